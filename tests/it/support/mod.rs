//! Test builders: real git repositories, real registry processes, the real binary.
#![allow(dead_code)]

pub mod act;
pub mod client;
pub mod cmd;
pub mod fault_proxy;
pub mod git;
pub mod gitlab_job;
pub mod http;
pub mod labeled_image;
pub mod persona;
pub mod registry;
pub mod release_mirror;
pub mod remote;
pub mod token_server;
