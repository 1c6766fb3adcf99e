//! spikesweep: parallel ensembles of stochastic Hodgkin-Huxley networks,
//! from one TOML spec to Parquet tables of spikes, rates and synchrony.
//!
//! Layers only look upward (ARCHITECTURE.md):
//! [`model`] -> [`graph`] -> [`integrate`] -> [`observe`] -> [`spec`] -> [`plan`] ->
//! [`run`] -> [`output`] -> [`store`] -> [`plot`]; the binary (`src/main.rs`) is the only place that
//! prints.

pub mod graph;
pub mod integrate;
pub mod model;
pub mod observe;
pub mod output;
pub mod plan;
pub mod plot;
pub mod run;
pub mod simd;
pub mod spec;
pub mod store;
