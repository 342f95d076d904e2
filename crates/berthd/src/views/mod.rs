//! Views: berthd's domain types (container records, networks, volumes, images, exec instances, the host) rendered
//! as the Engine API's response models (`berth_api::models`, bollard's, API v1.53) with every field Docker sends,
//! and per API version where Docker's output differs. Routes parse a request, call a manager, and render its result
//! here; managers know no JSON.
//!
//! bollard's models skip a field that is `None`, while Docker sends every field of its Go structs that has no
//! `omitempty`: a nil slice or map as `null`. So a view sets what Docker always sends to a value (`Some("")`,
//! `Some(0)`, `Some(vec![])`), and names the fields Docker sends as `null` in a [`render::Nulls`] table; [`render::render`] is the
//! one place that adds those after serializing. Fields that API v1.53 no longer has but older versions (or Docker
//! still, for compatibility) send are small typed structs of their own, merged in by [`render::merge`].

#[cfg(test)]
pub(crate) mod check;
pub mod container;
pub mod event;
pub mod exec;
pub mod image;
pub mod network;
pub mod pod;
pub mod render;
pub mod stats;
pub mod system;
pub mod volume;
