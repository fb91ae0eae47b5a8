//! Producer-side storage (portal); filled in by the producer portal work.
