//! wharf-builder (skeleton)
