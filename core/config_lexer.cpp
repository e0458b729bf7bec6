#include "core/config_lexer.h"

#include <cstddef>
#include <string>
#include <utility>

#include "core/assert.h"

namespace ditto::config {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

bool ends_word(char c) {
  return is_space(c) || c == '{' || c == '}' || c == ';' || c == '"' || c == '#';
}

class Lexer {
 public:
  Lexer(std::string_view text, std::string_view file_name, std::uint32_t file_index)
      : text_(text), file_(file_name), file_index_(file_index) {}

  Result<std::vector<Token>> run() {
    std::vector<Token> tokens;
    while (true) {
      skip_space_and_comments();
      Token token;
      token.file_index = file_index_;
      token.line = line_;
      token.column = column_;
      if (position_ == text_.size()) {
        tokens.push_back(std::move(token));
        break;
      }
      const char c = text_[position_];
      if (c == '{' || c == '}' || c == ';') {
        token.kind = c == '{'   ? TokenKind::open_brace
                     : c == '}' ? TokenKind::close_brace
                                : TokenKind::semicolon;
        token.text = std::string(1, c);
        advance();
      } else if (c == '"') {
        if (!read_string(token)) {
          return Error{Location{file_, token.line, token.column}.to_string() +
                       ": unterminated string"};
        }
      } else {
        read_word(token);
      }
      tokens.push_back(std::move(token));
    }
    DITTO_ASSERT(!tokens.empty() && tokens.back().kind == TokenKind::end);
    return tokens;
  }

 private:
  void advance() {
    DITTO_ASSERT(position_ < text_.size());
    if (text_[position_] == '\n') {
      line_ += 1;
      column_ = 1;
    } else {
      column_ += 1;
    }
    position_ += 1;
  }

  void skip_space_and_comments() {
    while (position_ < text_.size()) {
      const char c = text_[position_];
      if (c == '#') {
        while (position_ < text_.size() && text_[position_] != '\n') advance();
      } else if (is_space(c)) {
        advance();
      } else {
        return;
      }
    }
  }

  // Reads "..." into token.text; false if the line or the text ends first.
  bool read_string(Token& token) {
    DITTO_ASSERT(text_[position_] == '"');
    token.kind = TokenKind::string;
    advance();
    while (position_ < text_.size()) {
      char c = text_[position_];
      if (c == '\n') return false;
      if (c == '"') {
        advance();
        return true;
      }
      if (c == '\\') {
        advance();
        if (position_ == text_.size() || text_[position_] == '\n') return false;
        c = text_[position_];
      }
      token.text.push_back(c);
      advance();
    }
    return false;
  }

  void read_word(Token& token) {
    token.kind = TokenKind::word;
    const std::size_t start = position_;
    while (position_ < text_.size() && !ends_word(text_[position_])) advance();
    DITTO_ASSERT(position_ > start);
    token.text = std::string(text_.substr(start, position_ - start));
  }

  std::string_view text_;
  std::string file_;
  std::uint32_t file_index_ = 0;
  std::size_t position_ = 0;
  std::uint32_t line_ = 1;
  std::uint32_t column_ = 1;
};

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view text, std::string_view file_name,
                                    std::uint32_t file_index) {
  return Lexer(text, file_name, file_index).run();
}

std::string describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::word:
      return "'" + token.text + "'";
    case TokenKind::string:
      return "\"" + token.text + "\"";
    case TokenKind::open_brace:
      return "'{'";
    case TokenKind::close_brace:
      return "'}'";
    case TokenKind::semicolon:
      return "';'";
    case TokenKind::end:
      return "end of file";
  }
  return "?";
}

}  // namespace ditto::config
