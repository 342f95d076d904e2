//! Images of the store by name: the leaf the other image modules (and the routes) look images up through.

use berth_store::Image;

use crate::daemon::Daemon;
use crate::error::Error;
use crate::task::blocking;

/// An image of the store by name, ID or ID prefix (404 `No such image: ...`).
pub async fn resolve(d: &Daemon, name: &str) -> Result<Image, Error> {
    let store = d.store.clone();
    let name = name.to_string();
    blocking(move || store.resolve_image(&name).map_err(Error::from)).await
}
