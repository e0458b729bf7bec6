// Tokenizer for the drbd.conf grammar (internal to core/config*.cpp).
//
// Tokens: words (any run of characters other than white space and `{ } ; " #`), double-quoted
// strings (backslash escapes the next character; a string may not span lines), `{`, `}`, `;`.
// `#` starts a comment that runs to the end of the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/result.h"

namespace ditto::config {

enum class TokenKind : std::uint8_t { word, string, open_brace, close_brace, semicolon, end };

struct Token {
  TokenKind kind = TokenKind::end;
  std::string text;              // the word, or the string without quotes and escapes
  std::uint32_t file_index = 0;  // which file the token came from (includes add files)
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// The whole text as tokens, ending with one `end` token; or the first lexical error
// ("f.res:3:9: unterminated string").
Result<std::vector<Token>> tokenize(std::string_view text, std::string_view file_name,
                                    std::uint32_t file_index);

// How a token reads in an error message: 'word', "string", '{', end of file.
std::string describe(const Token& token);

}  // namespace ditto::config
