//! The wire decoder on arbitrary bytes, cut into chunks at arbitrary places: it must never panic, and every
//! byte must be accounted for (used by a frame, discarded, or pending).
#![no_main]

use ionm_wire::{Decoder, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so the fuzzer explores split frames too.
    let Some((&split, rest)) = data.split_first() else { return };
    let chunk = usize::from(split).max(1);
    let mut dec = Decoder::new();
    let mut sink = [0i32; ionm_wire::MAX_SAMPLE_VALUES];
    for part in rest.chunks(chunk) {
        dec.decode(part, |ev| {
            if let Event::Samples(s) = ev {
                assert_eq!(s.copy_into(&mut sink), s.n_values());
            }
            if let Event::DeviceInfo(d) = ev {
                assert_eq!(d.channels().count(), d.n_channels());
            }
        });
    }
    assert_eq!(dec.stats().bytes, rest.len() as u64);
});
