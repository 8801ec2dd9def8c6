//! Feeds arbitrary bytes to the EDF/BDF reader: it must never panic, hang or allocate without bound, only return
//! errors. Run: `cargo +nightly fuzz run edf_reader` (seed corpus: crates/ionm-edf/tests/data/broken/).
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = ionm_edf::EdfReader::new(Cursor::new(data)) else {
        return;
    };
    let _ = reader.scan_annotations();
    let signals = reader.signals().len();
    for i in 0..signals {
        let _ = reader.read_signal_physical(i);
    }
    while let Ok(Some(record)) = reader.next_record() {
        for i in 0..signals {
            let _ = record.digital(i).map(Iterator::count);
            let _ = record.tals(i);
        }
        let _ = record.start_time();
    }
});
