//! ChatBrick bodies from arbitrary bytes: every body decodes into a typed event, `Other`, or
//! `Undecodable` with a reason; never a panic.
//!
//! The input is the body. Checked beyond "no panic": what `hookline_fuzz::check_decoded` checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    hookline_fuzz::check_decoded(hookline::chatbrick::SOURCE, body, "type");
});
