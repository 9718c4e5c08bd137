//! Tests of `sim_file_system`.

use super::*;
use crate::file_system::append_all;

fn disk_with_directory(seed: u64) -> SimFileSystem {
    let disk = SimFileSystem::new(seed);
    disk.create_dir_all(Path::new("/data")).expect("creates");
    disk.sync_directory(Path::new("/")).expect("syncs");
    disk
}

/// A thread of a crashed process that outlives it (in a test, a snapshot writer) must not
/// change what the next life of the process finds on the disk.
#[test]
fn a_process_view_does_nothing_after_the_process_crashed() {
    let disk = disk_with_directory(1);
    let dead = disk.for_this_process();
    let path = Path::new("/data/old");
    let mut file = dead.create_new_file(path).expect("creates");
    append_all(file.as_mut(), b"old").expect("writes");
    disk.process_crash();
    let alive = disk.for_this_process();
    assert!(
        dead.remove_file(path).is_err(),
        "the dead process removes nothing"
    );
    assert!(dead.rename(path, Path::new("/data/new")).is_err());
    assert!(dead.create_new_file(Path::new("/data/other")).is_err());
    assert!(dead.list_directory(Path::new("/data")).is_err());
    assert!(dead.open_file(path).is_err());
    assert!(append_all(file.as_mut(), b"more").is_err());
    assert_eq!(alive.read_file(path).expect("still there"), b"old".to_vec());
    alive
        .remove_file(path)
        .expect("the live process removes it");
    assert!(
        disk.read_file(path).is_err(),
        "the disk itself follows every life"
    );
}

#[test]
fn synced_data_survives_and_unsynced_data_may_not() {
    let mut kept_unsynced = false;
    let mut lost_unsynced = false;
    for seed in 0..64 {
        let disk = disk_with_directory(seed);
        let path = Path::new("/data/file");
        let mut file = disk.create_new_file(path).expect("creates");
        append_all(file.as_mut(), &[7u8; 1000]).expect("writes");
        file.sync_data().expect("syncs");
        disk.sync_directory(Path::new("/data")).expect("syncs");
        append_all(file.as_mut(), &[9u8; 2000]).expect("writes");
        disk.power_loss();
        let contents = disk.read_file(path).expect("the synced file is there");
        assert_eq!(&contents[..1000], &[7u8; 1000][..], "seed {seed}");
        kept_unsynced |= contents.len() > 1000 && contents[1000..].contains(&9);
        lost_unsynced |= contents.len() == 1000;
        assert!(
            file.sync_data().is_err(),
            "a handle from before the crash is dead"
        );
    }
    assert!(kept_unsynced && lost_unsynced, "both outcomes occur");
}

#[test]
fn a_file_whose_directory_was_not_synced_vanishes() {
    let disk = disk_with_directory(1);
    let path = Path::new("/data/file");
    let mut file = disk.create_new_file(path).expect("creates");
    append_all(file.as_mut(), b"synced contents").expect("writes");
    file.sync_data().expect("syncs");
    disk.power_loss();
    assert_eq!(
        disk.read_file(path).map_err(|error| error.kind()),
        Err(io::ErrorKind::NotFound)
    );
}

#[test]
fn a_failed_sync_drops_the_dirty_pages_for_good() {
    let disk = disk_with_directory(2);
    let path = Path::new("/data/file");
    let mut file = disk.create_new_file(path).expect("creates");
    disk.sync_directory(Path::new("/data")).expect("syncs");
    append_all(file.as_mut(), &[5u8; 600]).expect("writes");
    disk.arm_fault(SimFault::SyncError, 0);
    assert!(file.sync_data().is_err());
    assert_eq!(disk.read_file(path).expect("readable").len(), 600);
    // A later sync succeeds but does not write the dropped pages.
    file.sync_data().expect("syncs");
    for _ in 0..8 {
        disk.power_loss();
        let contents = disk.read_file(path).expect("the file is there");
        assert!(contents.iter().all(|&byte| byte == 0), "{contents:?}");
    }
}

#[test]
fn a_removed_file_stays_readable_while_open_then_is_freed() {
    let disk = disk_with_directory(5);
    let path = Path::new("/data/file");
    let mut file = disk.create_new_file(path).expect("creates");
    append_all(file.as_mut(), b"contents").expect("writes");
    disk.sync_directory(Path::new("/data")).expect("syncs");
    disk.remove_file(path).expect("removes");
    let mut read = [0u8; 8];
    file.read_exact_at(&mut read, 0)
        .expect("an open handle still reads");
    assert_eq!(&read, b"contents");
    assert_eq!(file.length().expect("has a length"), 8);
    assert_eq!(disk.state().files.len(), 1, "held by the handle");
    drop(file);
    assert_eq!(
        disk.state().files.len(),
        1,
        "the removal is not durable yet: a power loss would bring the file back"
    );
    disk.sync_directory(Path::new("/data")).expect("syncs");
    assert!(disk.state().files.is_empty(), "freed");
}

#[test]
fn power_off_stops_every_change() {
    let disk = disk_with_directory(3);
    let mut file = disk
        .create_new_file(Path::new("/data/file"))
        .expect("creates");
    disk.power_off_after(1);
    append_all(file.as_mut(), b"one").expect("the last operation before the cut");
    assert!(append_all(file.as_mut(), b"two").is_err());
    assert!(disk.is_powered_off());
    assert!(disk.create_new_file(Path::new("/data/other")).is_err());
}

#[test]
fn short_writes_and_no_space_are_injected() {
    let disk = disk_with_directory(4);
    let mut file = disk
        .create_new_file(Path::new("/data/file"))
        .expect("creates");
    disk.arm_fault(SimFault::ShortWrite, 0);
    assert_eq!(file.append(b"abcd").expect("short"), 2);
    disk.arm_fault(SimFault::NoSpace, 0);
    let error = file.append(b"cd").expect_err("no space");
    assert_eq!(
        error.raw_os_error(),
        Some(rustix::io::Errno::NOSPC.raw_os_error())
    );
    append_all(file.as_mut(), b"cd").expect("writes");
    assert_eq!(
        disk.read_file(Path::new("/data/file")).expect("readable"),
        b"abcd"
    );
}
