package com.amzigo.kms;

/** The few JSON operations the unwrap protocol needs: quote a string, read a string field. */
final class Json {
  private Json() {}

  /** A JSON string literal for {@code s}. */
  static String quote(String s) {
    StringBuilder out = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
      }
    }
    return out.append('"').toString();
  }

  /**
   * The string value of top-level field {@code name} of the JSON object {@code text}, or null
   * when the text is not such an object or the field is absent or not a string.
   */
  static String stringField(String text, String name) {
    if (text == null) {
      return null;
    }
    Parser p = new Parser(text);
    try {
      p.skipSpace();
      p.expect('{');
      p.skipSpace();
      if (p.peek() == '}') {
        return null;
      }
      while (true) {
        p.skipSpace();
        String key = p.string();
        p.skipSpace();
        p.expect(':');
        p.skipSpace();
        if (p.peek() == '"') {
          String value = p.string();
          if (key.equals(name)) {
            return value;
          }
        } else {
          p.skipValue();
        }
        p.skipSpace();
        if (p.peek() == ',') {
          p.pos++;
          continue;
        }
        p.expect('}');
        return null;
      }
    } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
      return null;
    }
  }

  private static final class Parser {
    final String s;
    int pos;

    Parser(String s) {
      this.s = s;
    }

    char peek() {
      return s.charAt(pos);
    }

    void expect(char c) {
      if (s.charAt(pos) != c) {
        throw new IllegalArgumentException("expected " + c);
      }
      pos++;
    }

    void skipSpace() {
      while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
        pos++;
      }
    }

    String string() {
      expect('"');
      StringBuilder out = new StringBuilder();
      while (true) {
        char c = s.charAt(pos++);
        if (c == '"') {
          return out.toString();
        }
        if (c != '\\') {
          out.append(c);
          continue;
        }
        char e = s.charAt(pos++);
        switch (e) {
          case '"': case '\\': case '/': out.append(e); break;
          case 'b': out.append('\b'); break;
          case 'f': out.append('\f'); break;
          case 'n': out.append('\n'); break;
          case 'r': out.append('\r'); break;
          case 't': out.append('\t'); break;
          case 'u':
            out.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
            pos += 4;
            break;
          default: throw new IllegalArgumentException("bad escape");
        }
      }
    }

    /** Skips a number, literal, array or object (strings inside are honoured). */
    void skipValue() {
      int depth = 0;
      while (true) {
        char c = s.charAt(pos);
        if (c == '"') {
          string();
          if (depth == 0) {
            return;
          }
          continue;
        }
        if (c == '{' || c == '[') {
          depth++;
        } else if (c == '}' || c == ']') {
          if (depth == 0) {
            return;
          }
          depth--;
          if (depth == 0) {
            pos++;
            return;
          }
        } else if (depth == 0 && (c == ',' || Character.isWhitespace(c))) {
          return;
        }
        pos++;
      }
    }
  }
}
