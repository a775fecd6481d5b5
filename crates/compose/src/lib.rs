//! wharf-compose: reads a compose project exactly as docker compose v2 does.
//!
//! (Loader under construction; see `model` for the resolved types.)
pub mod model;
pub use model::*;
