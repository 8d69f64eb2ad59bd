//! The images of the run, parsed, each with every computed tag as a full reference.

use crate::tags::Computed;
use tagguard_registry::Reference;

use super::PlanError;

/// One image of the run: its name as the policy gave it, and its tags as references.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub image: Reference,
    /// One per computed tag, in the policy's order.
    pub tags: Vec<Reference>,
}

/// Parses every image and forms every `image:tag`; the first invalid one is the error.
pub fn targets(computed: &Computed) -> Result<Vec<Target>, PlanError> {
    computed
        .images
        .iter()
        .map(|name| {
            let image: Reference = name.parse().map_err(|source| PlanError::Image {
                image: name.clone(),
                source,
            })?;
            if image.tag.is_some() || image.digest.is_some() {
                return Err(PlanError::ImageWithTag {
                    image: name.clone(),
                });
            }
            let tags = computed
                .tags
                .iter()
                .map(|t| {
                    image.with_tag(&t.tag).map_err(|source| PlanError::Tag {
                        image: name.clone(),
                        tag: t.tag.clone(),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Target {
                name: name.clone(),
                image,
                tags,
            })
        })
        .collect()
}
