// dittoadm's offline metadata commands, in the spirit of drbdmeta: create-md writes DRBD v09
// internal metadata (superblock, activity log, bitmap) at the end of a disk or file, dump-md
// prints it in drbdmeta's dump-md syntax. They do plain pread/pwrite on the backing device: these
// are administration tools, not the I/O path.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace ditto::datapath {

struct CreateMetadataOptions {
  std::string disk;
  std::uint32_t max_peers = 1;
  std::int32_t node_id = -1;
  bool force = false;
};

// Returns the exit status (0 ok, 10 bad input or I/O failure, 40 refused: valid or unreadable
// metadata present without --force). Messages name the disk and, for bad metadata, the field.
int create_metadata(const CreateMetadataOptions& options);
int dump_metadata(const std::string& disk, bool force, const std::string& command_line);

// Registers create-md and dump-md on `app`. When one of them ran, `exit_status` holds its exit
// status after app.parse() (it stays -1 otherwise).
void register_metadata_commands(CLI::App& app, int& exit_status);

}  // namespace ditto::datapath
