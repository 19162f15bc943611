//! Modified UTF-7 (RFC 3501 §5.1.3): every Unicode name survives encode → decode, an encoded
//! name is printable ASCII, and a name a server sends decodes to something that encodes back
//! to a name with the same meaning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfleet_shared::mutf7::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let encoded = encode(text);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "encoded name {encoded:?} is not printable ASCII"
    );
    assert_eq!(
        decode(&encoded).as_deref(),
        Ok(text),
        "round trip of {text:?}"
    );
    // A canonical encoding is its own fixed point.
    assert_eq!(encode(&decode(&encoded).unwrap()), encoded);

    if let Ok(decoded) = decode(text) {
        assert!(text.is_ascii(), "8-bit name {text:?} decoded");
        let again = encode(&decoded);
        assert_eq!(decode(&again).as_deref(), Ok(decoded.as_str()));
    }
});
