//! The photo decoder (PNG, JPEG, EXIF orientation, limits) on arbitrary bytes: an error or
//! an RGB picture within the decode limits, never a panic or an allocation past the budget.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = glimpse::viz::photo::decode(data) {
        let side = glimpse::budget::MAX_SIDE;
        assert!(image.width() <= side && image.height() <= side);
        // The drawing path: the display copy every picture is drawn on.
        let display = glimpse::viz::photo::display(&image);
        assert!(display.width().max(display.height()) <= glimpse::viz::photo::DISPLAY_MAX.max(1));
    }
});
