//! The restmq browser client. `main` only mounts [`app::App`]; see `app.rs` for the layout.

mod api;
mod app;
mod components;
mod hooks;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
