//! Helpers that more than one engine needs and that belong to none of them. Engines never use
//! each other for these; they use this.

pub mod batch_sizer;
pub mod users;
