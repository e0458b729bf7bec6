// drbdsetup's status text and events2 lines, checked against golden text written from the
// formats in drbd9-semantics.md §13.2-§13.3 and ecosystem.md §3.3 (not from our own output):
// which fields each mode shows, their order, the indentation per object, and where the
// 80-column wrapper starts a continuation line.
#include "datapath/control_status.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ditto::datapath {
namespace {

PeerDeviceView peer_device(ReplicationState replication, DiskState disk) {
  PeerDeviceView view;
  view.replication = replication;
  view.peer_disk = disk;
  return view;
}

ConnectionView connection(std::uint8_t id, const std::string& name, ConnectionState state,
                          Role role, PeerDeviceView device) {
  ConnectionView view;
  view.peer_node_id = NodeId{id};
  view.name = name;
  view.connection = state;
  view.role = role;
  view.peer_devices.push_back(device);
  return view;
}

// The §13.2 example: r0 on node 0, Primary, one volume, beta connected, gamma connecting.
ResourceView three_nodes() {
  ResourceView view;
  view.name = "r0";
  view.node_id = NodeId{0};
  view.role = Role::primary;
  DeviceView device;
  device.disk = DiskState::up_to_date;
  device.backing_device = "/dev/vg/r0";
  device.open = true;
  view.devices.push_back(device);
  view.connections.push_back(connection(
      1, "beta", ConnectionState::connected, Role::secondary,
      peer_device(ReplicationState::established, DiskState::up_to_date)));
  view.connections.push_back(connection(
      2, "gamma", ConnectionState::connecting, Role::unknown,
      peer_device(ReplicationState::off, DiskState::dunknown)));
  return view;
}

TEST(StatusText, VerboseMatchesTheDrbdsetupExampleIncludingItsLineBreaks) {
  EXPECT_EQ(format_status_text(three_nodes(), {.verbose = true, .statistics = false}),
            "r0 node-id:0 role:Primary suspended:no force-io-failures:no\n"
            "  volume:0 minor:0 disk:UpToDate backing_dev:/dev/vg/r0 quorum:yes open:yes\n"
            "      blocked:no\n"
            "  beta node-id:1 connection:Connected role:Secondary tls:no congested:no\n"
            "      ap-in-flight:0 rs-in-flight:0\n"
            "    volume:0 replication:Established peer-disk:UpToDate resync-suspended:no\n"
            "  gamma node-id:2 connection:Connecting role:Unknown tls:no congested:no\n"
            "      ap-in-flight:0 rs-in-flight:0\n"
            "    volume:0 replication:Off peer-disk:DUnknown resync-suspended:no\n");
}

TEST(StatusText, PlainShowsOnlyWhatIsNotTheDefaultAndNoPeerDevicesOfADownConnection) {
  ResourceView view = three_nodes();
  view.role = Role::secondary;
  view.devices[0].open = false;
  EXPECT_EQ(format_status_text(view, {}),
            "r0 role:Secondary\n"
            "  disk:UpToDate open:no\n"
            "  beta role:Secondary\n"
            "    peer-disk:UpToDate\n"
            "  gamma connection:Connecting\n");
}

TEST(StatusText, ASyncingPeerShowsReplicationPeerDiskAndDone) {
  ResourceView view = three_nodes();
  PeerDeviceView& syncing = view.connections[0].peer_devices[0];
  syncing.replication = ReplicationState::sync_source;
  syncing.peer_disk = DiskState::inconsistent;
  syncing.done_percent = 45.2;
  view.connections.pop_back();
  EXPECT_EQ(format_status_text(view, {}),
            "r0 role:Primary\n"
            "  disk:UpToDate open:yes\n"
            "  beta role:Secondary\n"
            "    replication:SyncSource peer-disk:Inconsistent done:45.20\n");
}

TEST(StatusText, ACongestedAheadPeerShowsCongestedAndReplicationAhead) {
  ResourceView view = three_nodes();
  view.connections[0].congested = true;
  view.connections[0].ap_in_flight = 1024;
  PeerDeviceView& behind = view.connections[0].peer_devices[0];
  behind.replication = ReplicationState::ahead;
  behind.peer_disk = DiskState::outdated;
  view.connections.pop_back();
  EXPECT_EQ(format_status_text(view, {}),
            "r0 role:Primary\n"
            "  disk:UpToDate open:yes\n"
            "  beta role:Secondary congested:yes ap-in-flight:1024 rs-in-flight:0\n"
            "    replication:Ahead peer-disk:Outdated\n");
}

TEST(StatusText, ADisklessClientWithoutQuorumShowsClientAndQuorumNo) {
  ResourceView view = three_nodes();
  view.connections.clear();
  view.devices[0].disk = DiskState::diskless;
  view.devices[0].client = true;
  view.devices[0].quorum = false;
  view.suspended = "quorum";
  EXPECT_EQ(format_status_text(view, {}),
            "r0 role:Primary suspended:quorum\n"
            "  disk:Diskless client:yes quorum:no open:yes\n");
}

TEST(StatusText, StatisticsStartTheirOwnLineAtTheObjectsStatisticsIndent) {
  ResourceView view = three_nodes();
  view.connections.pop_back();
  view.devices[0].read_kib = 100;
  view.devices[0].written_kib = 2048;
  view.connections[0].peer_devices[0].sent_kib = 2048;
  view.connections[0].peer_devices[0].out_of_sync_kib = 0;
  EXPECT_EQ(format_status_text(view, {.verbose = false, .statistics = true}),
            "r0 role:Primary\n"
            "  disk:UpToDate open:yes\n"
            "      read:100 written:2048\n"
            "  beta role:Secondary\n"
            "    peer-disk:UpToDate\n"
            "        received:0 sent:2048\n");
}

TEST(StatusText, VerboseStatisticsShowEveryCounterAndWrapAtEightyColumns) {
  ResourceView view = three_nodes();
  view.connections.pop_back();
  view.devices[0].size_kib = 1048576;
  view.devices[0].read_kib = 100;
  view.devices[0].written_kib = 200;
  view.connections[0].peer_devices[0].sent_kib = 200;
  view.connections[0].peer_devices[0].out_of_sync_kib = 64;
  view.connections[0].peer_devices[0].pending = 1;
  view.connections[0].peer_devices[0].unacked = 2;
  const std::string text = format_status_text(view, {.verbose = true, .statistics = true});
  EXPECT_EQ(text,
            "r0 node-id:0 role:Primary suspended:no force-io-failures:no\n"
            "    write-ordering:flush\n"
            "  volume:0 minor:0 disk:UpToDate backing_dev:/dev/vg/r0 quorum:yes open:yes\n"
            "      size:1048576 read:100 written:200 al-writes:0 bm-writes:0 upper-pending:0\n"
            "      lower-pending:0 al-suspended:no blocked:no\n"
            "  beta node-id:1 connection:Connected role:Secondary tls:no congested:no\n"
            "      ap-in-flight:0 rs-in-flight:0\n"
            "    volume:0 replication:Established peer-disk:UpToDate resync-suspended:no\n"
            "        received:0 sent:200 out-of-sync:64 pending:1 unacked:2\n");
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    EXPECT_LE(end - start, 80u) << text.substr(start, end - start);
    start = end + 1;
  }
}

TEST(StatusText, SeveralVolumesAreNamedEvenWithoutVerbose) {
  ResourceView view = three_nodes();
  view.connections.clear();
  DeviceView second = view.devices[0];
  second.volume = 1;
  second.minor = 1;
  view.devices.push_back(second);
  EXPECT_EQ(format_status_text(view, {}),
            "r0 role:Primary\n"
            "  volume:0 disk:UpToDate open:yes\n"
            "  volume:1 disk:UpToDate open:yes\n");
}

// ---- events2 ----

ResourceView events2_example() {
  ResourceView view = three_nodes();
  view.role = Role::secondary;
  view.may_promote = true;
  view.promotion_score = 10102;
  view.devices[0].open = false;
  view.connections.pop_back();
  view.connections[0].paths.push_back({"ipv4:10.0.0.1:7789", "ipv4:10.0.0.2:7789", true});
  return view;
}

TEST(Events2, TheExistsDumpIsTheReferenceSampleLineForLine) {
  EXPECT_EQ(format_events2_exists(events2_example(), {}),
            "exists resource name:r0 role:Secondary suspended:no force-io-failures:no "
            "may_promote:yes promotion_score:10102\n"
            "exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected "
            "role:Secondary\n"
            "exists device name:r0 volume:0 minor:0 backing_dev:/dev/vg/r0 disk:UpToDate "
            "client:no open:no quorum:yes\n"
            "exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 "
            "replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no\n"
            "exists path name:r0 peer-node-id:1 conn-name:beta local:ipv4:10.0.0.1:7789 "
            "peer:ipv4:10.0.0.2:7789 established:yes\n"
            "exists -\n");
}

TEST(Events2, StatisticsAppendEachObjectsCountersInDrbdsetupsOrder) {
  ResourceView view = events2_example();
  view.devices[0].size_kib = 4096;
  view.devices[0].read_kib = 8;
  view.devices[0].written_kib = 16;
  view.connections[0].peer_devices[0].sent_kib = 16;
  EXPECT_EQ(format_events2_exists(view, {.statistics = true}),
            "exists resource name:r0 role:Secondary suspended:no force-io-failures:no "
            "write-ordering:flush may_promote:yes promotion_score:10102\n"
            "exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected "
            "role:Secondary congested:no ap-in-flight:0 rs-in-flight:0\n"
            "exists device name:r0 volume:0 minor:0 backing_dev:/dev/vg/r0 disk:UpToDate "
            "client:no open:no quorum:yes size:4096 read:8 written:16 al-writes:0 bm-writes:0 "
            "upper-pending:0 lower-pending:0 al-suspended:no blocked:no\n"
            "exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 "
            "replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no "
            "received:0 sent:16 out-of-sync:0 pending:0 unacked:0\n"
            "exists path name:r0 peer-node-id:1 conn-name:beta local:ipv4:10.0.0.1:7789 "
            "peer:ipv4:10.0.0.2:7789 established:yes\n"
            "exists -\n");
}

// A resync of 80000 sectors, 40000 to go, 20 s after it started (2 s of them paused); 2048
// sectors (1 MiB) moved in the 2 s since the previous mark.
SyncDetailsView resync_halfway() {
  SyncDetailsView details;
  details.total_sectors = 80000;
  details.left_sectors = 40000;
  details.since_start_ms = 20000;
  details.paused_ms = 2000;
  details.dt0_ms = 18000;
  details.db0_sectors = 40000;
  details.dt1_ms = 2000;
  details.db1_sectors = 2048;
  details.same_checksum_sectors = 800;
  return details;
}

TEST(SyncDetails, RatesAndEtaAreComputedAsDrbdsetupDoes) {
  const SyncDetailsView details = resync_halfway();
  EXPECT_DOUBLE_EQ(details.recent_mib_per_second(), 0.5);  // 1 MiB in 2 s
  EXPECT_DOUBLE_EQ(details.average_mib_per_second(), 40000.0 / 18000 * 1000 / 2048);
  EXPECT_DOUBLE_EQ(details.start_mib_per_second(), 40000.0 / 18000 * 1000 / 2048);
  EXPECT_DOUBLE_EQ(details.eta_seconds(), 2.0 * 40000 / 2048);  // 39.06 s at the recent rate
  SyncDetailsView stalled = details;
  stalled.db1_sectors = 0;
  EXPECT_TRUE(std::isnan(stalled.eta_seconds()));
}

ResourceView syncing_example() {
  ResourceView view = events2_example();
  PeerDeviceView& peer = view.connections[0].peer_devices[0];
  peer.replication = ReplicationState::sync_source;
  peer.peer_disk = DiskState::inconsistent;
  peer.done_percent = 50.0;
  peer.out_of_sync_kib = 20000;
  peer.sync_details = resync_halfway();
  return view;
}

TEST(StatusText, VerboseStatisticsShowTheRecentResyncRateAndTheEta) {
  const std::string text =
      format_status_text(syncing_example(), {.verbose = true, .statistics = true});
  EXPECT_NE(text.find("        received:0 sent:0 out-of-sync:20000 pending:0 unacked:0 dbdt1:0.50\n"
                      "        eta:39\n"),
            std::string::npos)
      << text;
  const std::string plain = format_status_text(syncing_example(), {.statistics = true});
  EXPECT_NE(plain.find("done:50.00"), std::string::npos) << plain;
  EXPECT_NE(plain.find(" out-of-sync:20000\n"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("dbdt1"), std::string::npos) << plain;
}

TEST(Events2, StatisticsOfAResyncEndInTheRateAndEtaAndVerboseAddsTheDetails) {
  const std::string line_start = "exists peer-device name:r0 peer-node-id:1 conn-name:beta "
                                 "volume:0 replication:SyncSource peer-disk:Inconsistent "
                                 "peer-client:no resync-suspended:no done:50.00 received:0 "
                                 "sent:0 out-of-sync:20000 pending:0 unacked:0";
  EXPECT_NE(format_events2_exists(syncing_example(), {.statistics = true})
                .find(line_start + " dbdt1:0.50 eta:39\n"),
            std::string::npos);
  EXPECT_NE(format_events2_exists(syncing_example(), {.verbose = true, .statistics = true})
                .find(line_start +
                      " rs-total:80000 rs-dt-start-ms:20000 rs-paused-ms:2000 rs-dt0-ms:18000"
                      " rs-db0-sectors:40000 rs-dt1-ms:2000 rs-db1-sectors:2048 rs-failed:0"
                      " rs-same-csum:800 dbdt:1.09 dbdt0:1.09 dbdt1:0.50 eta:39\n"),
            std::string::npos);
  EXPECT_EQ(format_events2_exists(syncing_example(), {}).find("dbdt1"), std::string::npos);
}

TEST(SyncDetails, AreTakenFromTheCoresProgressMarksInSectorsAndMilliseconds) {
  core::PeerStatus peer;
  peer.replication = ReplicationState::sync_target;
  peer.resync_total_blocks = 10000;
  peer.resync_done_blocks = 5000;
  peer.resync_same_checksum_blocks = 100;
  core::SyncProgress& progress = peer.sync_progress;
  progress.running = true;
  progress.started = {Instant{1'000'000'000}, 10000};
  progress.previous_mark = {Instant{19'000'000'000}, 5256};
  progress.mark = {Instant{20'000'000'000}, 5100};
  progress.paused = Duration::from_ms(2000);
  const std::optional<SyncDetailsView> details = sync_details(peer, Instant{21'000'000'000});
  ASSERT_TRUE(details);
  EXPECT_FALSE(details->verify);
  EXPECT_EQ(details->total_sectors, 80000u);
  EXPECT_EQ(details->left_sectors, 40000u);
  EXPECT_EQ(details->since_start_ms, 20000);
  EXPECT_EQ(details->paused_ms, 2000);
  EXPECT_EQ(details->dt0_ms, 18000);
  EXPECT_EQ(details->db0_sectors, 40000);
  EXPECT_EQ(details->dt1_ms, 2000);
  EXPECT_EQ(details->db1_sectors, 2048);
  EXPECT_EQ(details->same_checksum_sectors, 800u);

  // Paused since 20.5 s: the pause so far counts.
  progress.was_paused = true;
  progress.noted = Instant{20'500'000'000};
  EXPECT_EQ(sync_details(peer, Instant{21'000'000'000})->paused_ms, 2500);

  peer.replication = ReplicationState::established;
  EXPECT_FALSE(sync_details(peer, Instant{21'000'000'000}));
  peer.replication = ReplicationState::sync_target;
  progress.running = false;  // not noted yet: no details rather than made-up ones
  EXPECT_FALSE(sync_details(peer, Instant{21'000'000'000}));
}

TEST(Events2, TimestampsAreIsoLocalTimeWithMicrosecondsAndTheUtcOffset) {
  EXPECT_EQ(format_events2_timestamp(0, 12, 0), "1970-01-01T00:00:00.000012+00:00");
  EXPECT_EQ(format_events2_timestamp(1'700'000'000, 999'999, 2 * 3600),
            "2023-11-15T00:13:20.999999+02:00");
  EXPECT_EQ(format_events2_timestamp(0, 0, -(5 * 3600 + 30 * 60)),
            "1969-12-31T18:30:00.000000-05:30");
}

}  // namespace
}  // namespace ditto::datapath
