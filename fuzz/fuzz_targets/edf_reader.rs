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
    // Partial reads (a replay that decodes only some channels): every other signal, and a record index from the
    // data, which may be out of range or name a signal twice.
    let some: Vec<usize> = (0..signals).step_by(2).chain(data.first().map(|&b| usize::from(b))).collect();
    let index = data.get(1).map_or(0, |&b| u64::from(b));
    for k in [0, index, u64::MAX] {
        if let Ok(record) = reader.read_record_signals(k, &some) {
            for &i in &some {
                let _ = record.digital(i).map(Iterator::count);
            }
        }
    }
    while let Ok(Some(record)) = reader.next_record() {
        for i in 0..signals {
            let _ = record.digital(i).map(Iterator::count);
            let _ = record.tals(i);
        }
        let _ = record.start_time();
    }
});
