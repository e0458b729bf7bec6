// Grammar pass, part 1: token access, includes, the top level and option sections.
#include "core/config_parser.h"

#include <charconv>
#include <utility>

#include "core/assert.h"

namespace ditto::config {
namespace {

bool is_name_token(const Token& token) {
  return token.kind == TokenKind::word || token.kind == TokenKind::string;
}

bool is_value_token(const Token& token) {
  return is_name_token(token);
}

}  // namespace

Result<ConfigDraft> Parser::run(std::string_view text, std::string_view file_name) {
  DITTO_ASSERT(tokens_.empty() && !error_);
  if (!load(text, std::string(file_name), 0, tokens_)) return *error_;
  // The end token sits where the top-level file ends; includes only add tokens before it.
  Token end;
  end.line = tokens_.empty() ? 1 : tokens_.back().line;
  end.column = tokens_.empty() ? 1 : tokens_.back().column + 1;
  tokens_.push_back(end);
  while (!peek_is(TokenKind::end)) {
    if (!parse_top_level()) return *error_;
  }
  DITTO_ASSERT(!error_);
  return std::move(draft_);
}

const Token& Parser::peek(std::size_t ahead) const {
  DITTO_ASSERT(!tokens_.empty() && tokens_.back().kind == TokenKind::end);
  const std::size_t index = position_ + ahead;
  return index < tokens_.size() ? tokens_[index] : tokens_.back();
}

const Token& Parser::next() {
  const Token& token = peek();
  if (position_ + 1 < tokens_.size()) position_ += 1;
  return token;
}

bool Parser::peek_is(TokenKind kind, std::size_t ahead) const {
  return peek(ahead).kind == kind;
}

bool Parser::peek_is_word(std::string_view word, std::size_t ahead) const {
  return peek(ahead).kind == TokenKind::word && peek(ahead).text == word;
}

Location Parser::location_of(const Token& token) const {
  DITTO_ASSERT(token.file_index < file_names_.size());
  return Location{file_names_[token.file_index], token.line, token.column};
}

bool Parser::fail(const Token& at, const std::string& message) {
  if (!error_) error_ = Error{location_of(at).to_string() + ": " + message};
  return false;
}

bool Parser::expect_open_brace(std::string_view after) {
  if (peek_is(TokenKind::open_brace)) {
    next();
    return true;
  }
  return fail(peek(), "expected '{' after '" + std::string(after) + "', got " + describe(peek()));
}

// The statement is tokens_[statement_start, position_); names it in the message.
bool Parser::expect_semicolon(std::size_t statement_start) {
  if (peek_is(TokenKind::semicolon)) {
    next();
    return true;
  }
  DITTO_ASSERT(statement_start < position_);
  std::string statement;
  for (std::size_t i = statement_start; i < position_; ++i) {
    if (!statement.empty()) statement += ' ';
    statement += tokens_[i].text;
  }
  return fail(peek(), "missing ';' after '" + statement + "' (got " + describe(peek()) + ")");
}

bool Parser::parse_name(std::string_view what, std::string& name) {
  if (!is_name_token(peek())) {
    return fail(peek(), "expected " + std::string(what) + ", got " + describe(peek()));
  }
  name = next().text;
  if (name.empty()) return fail(peek(), "empty " + std::string(what));
  return true;
}

bool Parser::parse_number(std::string_view what, std::uint32_t max, std::uint32_t& number) {
  const Token& token = peek();
  const std::string& text = token.text;
  std::uint64_t value = 0;
  const auto [end, code] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (token.kind != TokenKind::word || code != std::errc{} || end != text.data() + text.size()) {
    return fail(token, "expected a " + std::string(what) + " (a number), got " + describe(token));
  }
  if (value > max) {
    return fail(token, std::string(what) + " " + text + " out of range 0.." + std::to_string(max));
  }
  number = static_cast<std::uint32_t>(value);
  next();
  return true;
}

// Tokenizes `text` into `out`, splicing in the tokens of every `include "path";` in place, as
// drbdadm's scanner does (so includes work wherever a statement may stand).
bool Parser::load(std::string_view text, std::string file_name, std::uint32_t depth,
                  std::vector<Token>& out) {
  const auto file_index = static_cast<std::uint32_t>(file_names_.size());
  file_names_.push_back(std::move(file_name));
  Result<std::vector<Token>> tokens = tokenize(text, file_names_.back(), file_index);
  if (!tokens.ok()) {
    error_ = tokens.error();
    return false;
  }
  const std::vector<Token>& list = tokens.value();
  DITTO_ASSERT(!list.empty() && list.back().kind == TokenKind::end);
  for (std::size_t i = 0; i + 1 < list.size(); ++i) {
    const Token& token = list[i];
    if (token.kind != TokenKind::word || token.text != "include" || !is_name_token(list[i + 1])) {
      out.push_back(token);
      continue;
    }
    if (list[i + 2].kind != TokenKind::semicolon) {
      return fail(list[i + 2], "missing ';' after 'include " + list[i + 1].text + "' (got " +
                                   describe(list[i + 2]) + ")");
    }
    if (!include(token, list[i + 1], depth, out)) return false;
    i += 2;
  }
  return true;
}

bool Parser::include(const Token& keyword, const Token& path, std::uint32_t depth,
                     std::vector<Token>& out) {
  const std::string& name = path.text;
  if (name.find_first_of("*?[") != std::string::npos) {
    return fail(path, "include of '" + name + "': glob patterns are not supported yet");
  }
  if (!resolver_) {
    return fail(keyword, "cannot include '" + name + "': no include resolver was given");
  }
  if (depth + 1 > include_depth_max) {
    return fail(keyword, "cannot include '" + name + "': includes nested more than " +
                             std::to_string(include_depth_max) + " deep");
  }
  std::optional<std::string> text = resolver_(name);
  if (!text) return fail(path, "cannot read included file '" + name + "'");
  return load(*text, name, depth + 1, out);
}

bool Parser::parse_top_level() {
  const Token& keyword = peek();
  if (peek_is_word("global")) {
    next();
    return parse_section(SectionKind::global, draft_.config.global);
  }
  if (peek_is_word("common")) return parse_common();
  if (peek_is_word("resource")) return parse_resource();
  if (peek_is_word("skip")) return parse_skip();
  if (keyword.kind == TokenKind::word) {
    return fail(keyword, "unknown keyword '" + keyword.text + "' at top level");
  }
  return fail(keyword, "expected a keyword (global, common, resource), got " + describe(keyword));
}

bool Parser::parse_common() {
  DITTO_ASSERT(peek_is_word("common"));
  next();
  if (!expect_open_brace("common")) return false;
  Config& config = draft_.config;
  while (!peek_is(TokenKind::close_brace)) {
    const Token& keyword = peek();
    if (keyword.kind != TokenKind::word) {
      return fail(keyword, "expected a section in common, got " + describe(keyword));
    }
    next();
    bool ok = true;
    if (keyword.text == "net") {
      ok = parse_section(SectionKind::net, config.common_net);
    } else if (keyword.text == "disk") {
      ok = parse_section(SectionKind::disk, config.common_disk);
    } else if (keyword.text == "options") {
      ok = parse_section(SectionKind::options, config.common_options);
    } else if (keyword.text == "handlers") {
      ok = parse_section(SectionKind::handlers, config.common_handlers);
    } else if (keyword.text == "startup") {
      ok = parse_section(SectionKind::startup, config.common_startup);
    } else {
      return fail(keyword, "unknown keyword '" + keyword.text + "' in common section");
    }
    if (!ok) return false;
  }
  next();
  return true;
}

// `skip [anything] { ... }`: drbdadm's way to comment out a block; braces must balance.
bool Parser::parse_skip() {
  DITTO_ASSERT(peek_is_word("skip"));
  const Token& keyword = next();
  while (is_name_token(peek())) next();
  if (!expect_open_brace("skip")) return false;
  std::uint32_t depth = 1;
  while (depth > 0) {
    const Token& token = next();
    if (token.kind == TokenKind::end) return fail(keyword, "unterminated skip block");
    if (token.kind == TokenKind::open_brace) depth += 1;
    if (token.kind == TokenKind::close_brace) depth -= 1;
  }
  return true;
}

// `{ key value...; ... }`, the section keyword already consumed.
bool Parser::parse_section(SectionKind kind, Section& section) {
  if (!expect_open_brace(section_name(kind))) return false;
  while (!peek_is(TokenKind::close_brace)) {
    if (!parse_option(kind, section)) return false;
  }
  next();
  return true;
}

bool Parser::parse_option(SectionKind kind, Section& section) {
  const Token& key = peek();
  const std::string section_text(section_name(kind));
  if (key.kind != TokenKind::word) {
    return fail(key, "expected an option in " + section_text + " section, got " + describe(key));
  }
  const OptionSpec* spec = find_option_spec(kind, key.text);
  if (spec == nullptr) {
    return fail(key, "unknown keyword '" + key.text + "' in " + section_text + " section");
  }
  if (const Option* earlier = section.find(key.text)) {
    return fail(key, "option '" + key.text + "' given twice in " + section_text +
                         " section (first at " + earlier->location.to_string() + ")");
  }
  const std::size_t start = position_;
  Option option{key.text, {}, location_of(key), false};
  next();
  std::vector<std::size_t> value_positions;
  while (is_value_token(peek())) {
    value_positions.push_back(position_);
    option.values.push_back(next().text);
  }
  if (std::optional<ValueProblem> problem = check_values(*spec, option.values)) {
    const Token& at = problem->value_index < value_positions.size()
                          ? tokens_[value_positions[problem->value_index]]
                          : peek();
    return fail(at, problem->message);
  }
  if (!expect_semicolon(start)) return false;
  section.options.push_back(std::move(option));
  return true;
}

}  // namespace ditto::config
