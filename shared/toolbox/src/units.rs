//! (filled in by its family)

use crate::Tool;

pub static TOOLS: &[Tool] = &[];
