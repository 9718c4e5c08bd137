//! The peer network: TCP transport and a simulated network behind the network port (filled by issue 4).
