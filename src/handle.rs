//! Open file and directory handles, by the ids given to the kernel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// Ids -> handles. Ids are never reused, so a stale id from the kernel can never name
/// another file's handle.
#[derive(Debug)]
pub struct HandleTable<T> {
    /// The open handles.
    handles: RwLock<HashMap<u64, Arc<T>>>,
    /// Next id to give out; starts at 1 (0 means "no handle" to some tools).
    next_id: AtomicU64,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable {
            handles: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }
}

impl<T> HandleTable<T> {
    /// Stores `handle` under a fresh id.
    pub fn insert(&self, handle: T) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.handles.write().insert(id, Arc::new(handle));
        id
    }

    /// The handle with `id`.
    pub fn get(&self, id: u64) -> Option<Arc<T>> {
        self.handles.read().get(&id).cloned()
    }

    /// Removes and returns the handle with `id`; in-flight users keep it alive until done.
    pub fn remove(&self, id: u64) -> Option<Arc<T>> {
        self.handles.write().remove(&id)
    }

    /// Whether any open handle satisfies `pred`.
    pub fn any(&self, pred: impl Fn(&T) -> bool) -> bool {
        self.handles.read().values().any(|h| pred(h))
    }

    /// Number of open handles.
    pub fn len(&self) -> usize {
        self.handles.read().len()
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.handles.read().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused() {
        let table = HandleTable::default();
        let a = table.insert("a");
        assert_eq!(table.remove(a).as_deref(), Some(&"a"));
        let b = table.insert("b");
        assert_ne!(a, b);
        assert!(table.get(a).is_none());
        assert_eq!(table.get(b).as_deref(), Some(&"b"));
        assert_eq!(table.len(), 1);
    }
}
