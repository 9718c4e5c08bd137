//! The simulated network (being built; see issue 4).
