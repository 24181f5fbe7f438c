//! The publisher's and the admin's bundle (`manage.html`).

fn main() {
    web::start_manage();
}
