//! Browser end-to-end tests of the restmq web client (`tests/browser.rs`): a restmq server runs
//! in-process on the built `dist/`, and headless Chromium, driven through a `chromedriver` each
//! test starts, asserts through the real DOM. Run `trunk build --release` first (`cargo xtask
//! test` does). The library itself is empty.
