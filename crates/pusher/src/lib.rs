//! wharf-pusher (skeleton)
