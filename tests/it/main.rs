//! One integration-test binary (one link step) with a module per area.

mod action;
mod audit;
mod budget;
mod check;
mod check_cli;
mod check_secrets;
mod cli;
mod container;
mod copy;
mod docker_engine;
mod faults;
mod faults_cli;
mod faults_guard;
mod faults_injection;
mod faults_push;
mod faults_secrets;
mod gitlab;
mod hook;
mod policy;
mod prune;
mod push;
mod race;
mod registry;
mod rerun;
mod support;
mod tags;
