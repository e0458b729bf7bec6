// The grammar pass: tokens (includes spliced in) → ConfigDraft (internal to core/config*.cpp).
// A recursive-descent parser; the first error stops it and is returned with its location.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/config_draft.h"
#include "core/config_keywords.h"
#include "core/config_lexer.h"
#include "core/result.h"

namespace ditto::config {

class Parser {
 public:
  explicit Parser(const IncludeResolver& resolver) : resolver_(resolver) {}

  Result<ConfigDraft> run(std::string_view text, std::string_view file_name);

 private:
  // Tokens and errors (config_parser.cpp).
  const Token& peek(std::size_t ahead = 0) const;
  const Token& next();
  bool peek_is(TokenKind kind, std::size_t ahead = 0) const;
  bool peek_is_word(std::string_view word, std::size_t ahead = 0) const;
  Location location_of(const Token& token) const;
  bool fail(const Token& at, const std::string& message);
  bool expect_open_brace(std::string_view after);
  bool expect_semicolon(std::size_t statement_start);
  bool parse_name(std::string_view what, std::string& name);
  bool parse_number(std::string_view what, std::uint32_t max, std::uint32_t& number);
  bool load(std::string_view text, std::string file_name, std::uint32_t depth,
            std::vector<Token>& out);
  bool include(const Token& keyword, const Token& path, std::uint32_t depth,
               std::vector<Token>& out);

  // Top level and option sections (config_parser.cpp).
  bool parse_top_level();
  bool parse_common();
  bool parse_skip();
  bool parse_section(SectionKind kind, Section& section);
  bool parse_option(SectionKind kind, Section& section);

  // Resources, hosts, volumes (config_parser_resource.cpp).
  bool parse_resource();
  bool parse_resource_statement(ResourceDraft& resource);
  bool parse_volume_statement(VolumeScope& scope, std::string_view scope_name);
  bool parse_volume_block(VolumeScope& scope);
  bool parse_volume_field(VolumeDraft& volume, std::string_view scope_name);
  bool parse_device(VolumeDraft& volume);
  bool parse_host(ResourceDraft& resource);
  bool parse_host_statement(HostDraft& host);
  bool parse_address(std::string& family, std::string& address, std::uint16_t& port);

  // Connections (config_parser_connection.cpp).
  bool parse_mesh(Resource& resource);
  bool parse_connection(Resource& resource);
  bool parse_connection_statement(Connection& connection);
  bool parse_endpoint(Endpoint& endpoint, bool address_required);
  bool parse_path(Connection& connection);
  bool parse_peer_volume(Connection& connection);

  const IncludeResolver& resolver_;
  std::vector<std::string> file_names_;
  std::vector<Token> tokens_;
  std::size_t position_ = 0;
  std::optional<Error> error_;
  ConfigDraft draft_;
};

}  // namespace ditto::config
