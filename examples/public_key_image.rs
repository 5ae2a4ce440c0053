//! Draws the public key image of two fresh identities, Alice and Bob.
//!
//! Writes `public_key_image.png` and `public_key_image.svg`, and Alice's
//! scannable QR code as `public_key_qr.png` and `public_key_qr.svg`, into
//! the directory given as the first argument (default: the system temp
//! dir), prints the picture in the terminal and the numeric code, and exits
//! non-zero if decoding what it wrote does not give back the fingerprints.
//!
//! ```text
//! cargo run --example public_key_image -- /tmp/out
//! ```

use secret_chat::{
    Fingerprint, IdentityKeyPair, KeyImage, MemberId, PairVerification, TerminalMode,
};
use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);

    let (alice, bob) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    let alice_fp = Fingerprint::compute(&MemberId::new(b"alice@example.org")?, alice.public());
    let bob_fp = Fingerprint::compute(&MemberId::new(b"bob@example.org")?, bob.public());
    // What Alice's phone shows; Bob's shows the same picture and code.
    let pair = PairVerification::new(alice_fp, bob_fp);
    let image = pair.image();

    let png_path = dir.join("public_key_image.png");
    let svg_path = dir.join("public_key_image.svg");
    let png = image.render_png(24)?;
    let svg = image.render_svg();
    std::fs::write(&png_path, &png)?;
    std::fs::write(&svg_path, &svg)?;
    // The QR code Alice's phone shows for Bob's to scan.
    let qr_png_path = dir.join("public_key_qr.png");
    let qr_svg_path = dir.join("public_key_qr.svg");
    std::fs::write(&qr_png_path, pair.payload().qr_png(8)?)?;
    std::fs::write(&qr_svg_path, pair.payload().qr_svg()?)?;

    let colour = std::env::var_os("TERM").is_some_and(|t| t != "dumb")
        && std::env::var_os("NO_COLOR").is_none();
    let mode = if colour {
        TerminalMode::TrueColor
    } else {
        TerminalMode::Plain
    };
    let text = image.render_terminal(mode);
    println!("Public key image (compare it with your friend's):\n");
    print!("{text}");
    println!("\nNumeric code:\n{}", pair.numeric_code());
    println!(
        "\nWrote {}, {}, {} and {}",
        png_path.display(),
        svg_path.display(),
        qr_png_path.display(),
        qr_svg_path.display()
    );

    // Read back what was written: every rendering must give back the bits.
    let from_png = KeyImage::decode_png(&std::fs::read(&png_path)?)?;
    let from_svg = KeyImage::decode_svg(&std::fs::read_to_string(&svg_path)?)?;
    let from_term = KeyImage::decode_terminal(&text)?;
    let from_plain = KeyImage::decode_terminal(&image.render_terminal(TerminalMode::Plain))?;
    for decoded in [from_png, from_svg, from_term, from_plain] {
        if decoded != image || decoded != PairVerification::new(bob_fp, alice_fp).image() {
            eprintln!("decoding a rendering did not give back the fingerprints");
            std::process::exit(1);
        }
    }
    // Bob's phone checks what it scanned from Alice's QR code.
    let bobs_phone = PairVerification::new(bob_fp, alice_fp);
    bobs_phone.verify_scanned(&pair.payload().to_bytes())?;
    println!("Decoded PNG, SVG and terminal output: fingerprints recovered exactly.");
    Ok(())
}
