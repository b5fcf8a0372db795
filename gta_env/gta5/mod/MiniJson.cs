// Strict, dependency-free JSON for the gta5drive bridge (objects, arrays, strings, numbers, true,
// false, null). Parse rejects duplicate keys, nesting deeper than MaxDepth and trailing garbage;
// numbers become long when integral and double otherwise. Write emits invariant-culture numbers.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Gta5Drive
{
    public sealed class JsonError : Exception
    {
        public JsonError(string message) : base(message) { }
    }

    public static class MiniJson
    {
        public const int MaxDepth = 32;

        public static object Parse(string text)
        {
            int pos = 0;
            object value = ParseValue(text, ref pos, 0);
            SkipWhitespace(text, ref pos);
            if (pos != text.Length) throw new JsonError("trailing characters after the JSON value at " + pos);
            return value;
        }

        static void SkipWhitespace(string s, ref int pos)
        {
            while (pos < s.Length && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) pos++;
        }

        static object ParseValue(string s, ref int pos, int depth)
        {
            if (depth > MaxDepth) throw new JsonError("message is nested too deeply");
            SkipWhitespace(s, ref pos);
            if (pos >= s.Length) throw new JsonError("unexpected end of JSON");
            char c = s[pos];
            if (c == '{') return ParseObject(s, ref pos, depth + 1);
            if (c == '[') return ParseArray(s, ref pos, depth + 1);
            if (c == '"') return ParseString(s, ref pos);
            if (Match(s, ref pos, "true")) return true;
            if (Match(s, ref pos, "false")) return false;
            if (Match(s, ref pos, "null")) return null;
            if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(s, ref pos);
            throw new JsonError("unexpected character '" + c + "' at " + pos);
        }

        static bool Match(string s, ref int pos, string word)
        {
            if (string.CompareOrdinal(s, pos, word, 0, word.Length) != 0) return false;
            pos += word.Length;
            return true;
        }

        static Dictionary<string, object> ParseObject(string s, ref int pos, int depth)
        {
            var result = new Dictionary<string, object>(StringComparer.Ordinal);
            pos++;
            SkipWhitespace(s, ref pos);
            if (pos < s.Length && s[pos] == '}') { pos++; return result; }
            while (true)
            {
                SkipWhitespace(s, ref pos);
                if (pos >= s.Length || s[pos] != '"') throw new JsonError("expected a string key at " + pos);
                string key = ParseString(s, ref pos);
                SkipWhitespace(s, ref pos);
                if (pos >= s.Length || s[pos] != ':') throw new JsonError("expected ':' at " + pos);
                pos++;
                object value = ParseValue(s, ref pos, depth);
                if (result.ContainsKey(key)) throw new JsonError("duplicate key '" + Clip(key) + "'");
                result[key] = value;
                SkipWhitespace(s, ref pos);
                if (pos >= s.Length) throw new JsonError("unterminated object");
                if (s[pos] == ',') { pos++; continue; }
                if (s[pos] == '}') { pos++; return result; }
                throw new JsonError("expected ',' or '}' at " + pos);
            }
        }

        static List<object> ParseArray(string s, ref int pos, int depth)
        {
            var result = new List<object>();
            pos++;
            SkipWhitespace(s, ref pos);
            if (pos < s.Length && s[pos] == ']') { pos++; return result; }
            while (true)
            {
                result.Add(ParseValue(s, ref pos, depth));
                SkipWhitespace(s, ref pos);
                if (pos >= s.Length) throw new JsonError("unterminated array");
                if (s[pos] == ',') { pos++; continue; }
                if (s[pos] == ']') { pos++; return result; }
                throw new JsonError("expected ',' or ']' at " + pos);
            }
        }

        static string ParseString(string s, ref int pos)
        {
            var sb = new StringBuilder();
            pos++;
            while (pos < s.Length)
            {
                char c = s[pos++];
                if (c == '"') return sb.ToString();
                if (c < 0x20) throw new JsonError("control character in string");
                if (c != '\\') { sb.Append(c); continue; }
                if (pos >= s.Length) break;
                char e = s[pos++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (pos + 4 > s.Length) throw new JsonError("bad \\u escape");
                        int code;
                        if (!int.TryParse(s.Substring(pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out code))
                            throw new JsonError("bad \\u escape");
                        sb.Append((char)code);
                        pos += 4;
                        break;
                    default: throw new JsonError("bad escape \\" + e);
                }
            }
            throw new JsonError("unterminated string");
        }

        static object ParseNumber(string s, ref int pos)
        {
            int start = pos;
            if (s[pos] == '-') pos++;
            while (pos < s.Length && "0123456789+-.eE".IndexOf(s[pos]) >= 0) pos++;
            string token = s.Substring(start, pos - start);
            bool integral = token.IndexOfAny(new[] { '.', 'e', 'E' }) < 0;
            long l;
            if (integral && long.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
            double d;
            if (!double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out d) || double.IsInfinity(d) || double.IsNaN(d))
                throw new JsonError("bad number '" + Clip(token) + "'");
            return d;
        }

        public static string Clip(string s)
        {
            return s.Length <= 40 ? s : s.Substring(0, 40) + "...";
        }

        public static string Write(object value)
        {
            var sb = new StringBuilder();
            WriteValue(sb, value);
            return sb.ToString();
        }

        static void WriteValue(StringBuilder sb, object value)
        {
            if (value == null) { sb.Append("null"); return; }
            if (value is bool) { sb.Append((bool)value ? "true" : "false"); return; }
            if (value is string) { WriteString(sb, (string)value); return; }
            if (value is int || value is long) { sb.Append(Convert.ToInt64(value).ToString(CultureInfo.InvariantCulture)); return; }
            if (value is float || value is double)
            {
                double d = Convert.ToDouble(value);
                if (double.IsNaN(d) || double.IsInfinity(d)) d = 0.0;  // the protocol forbids NaN
                sb.Append(d.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            var dict = value as IDictionary<string, object>;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (var pair in dict)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, pair.Key);
                    sb.Append(':');
                    WriteValue(sb, pair.Value);
                }
                sb.Append('}');
                return;
            }
            var list = value as System.Collections.IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (object item in list)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteValue(sb, item);
                }
                sb.Append(']');
                return;
            }
            throw new JsonError("cannot serialise " + value.GetType().Name);
        }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                if (c == '"') sb.Append("\\\"");
                else if (c == '\\') sb.Append("\\\\");
                else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                else sb.Append(c);
            }
            sb.Append('"');
        }
    }
}
