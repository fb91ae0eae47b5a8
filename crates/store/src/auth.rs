//! Producer-side storage (auth); filled in by the producer portal work.
