// gta5drive: the GTA V side of the bridge, a ScriptHookVDotNet v3 script, in ONE file.
//
// SHVDN compiles every .cs file in scripts\ as its own assembly (CodeDom CSharpCodeProvider, the
// .NET Framework's C# 5 compiler, references System, System.Core, System.Drawing,
// System.Windows.Forms, System.XML, System.XML.Linq and the API chosen by the file name: ".3.cs"
// = the v3 API). So the whole mod lives here, written in C# 5, and installs by copying this file
// into scripts\ (or compile it into one DLL: README.md next to this file).
//
// Contents: MiniJson (strict JSON), Protocol/Connection/BridgeServer (the loopback bridge,
// protocol version 2: see gta_env/gta5/protocol.py and docs/gta5.md) and, unless
// GTA5DRIVE_SELFTEST is defined (the console self test in selftest/ builds the bridge alone),
// the Gta5DriveMod script that executes the bridge's requests on the game's script thread.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
#if !GTA5DRIVE_SELFTEST
using GTA;
using GTA.Math;
using GTA.Native;
#endif

// ---- Strict, dependency-free JSON (objects, arrays, strings, numbers, true, false, null). Parse
// rejects duplicate keys, nesting deeper than MaxDepth and trailing garbage; numbers become long
// when integral and double otherwise. Write emits invariant-culture numbers.
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

// ---- The bridge, server side. Loopback TCP, length-prefixed JSON frames, a mutual HMAC-SHA256
// challenge-response handshake (the token never crosses the wire) with one deadline,
// unauthenticated connections capped apart from clients (the oldest is evicted), size caps and
// schema validation of every request, a bounded request queue, and per-client bounded send queues
// drained by a writer thread per client: the script thread never writes to a socket.
namespace Gta5Drive
{
    public sealed class ProtocolError : Exception
    {
        public ProtocolError(string reason) : base(reason) { }
    }

    /// <summary>One field of a request: its JSON kind and bounds.</summary>
    public sealed class Field
    {
        public readonly string Kind;  // "int", "float", "bool", "string", "cameras"
        public readonly bool Required;
        public readonly double Min, Max;
        public readonly string[] Choices;

        public Field(string kind, bool required, double min = -1e7, double max = 1e7, string[] choices = null)
        {
            Kind = kind; Required = required; Min = min; Max = max; Choices = choices;
        }
    }

    public static class Protocol
    {
        public const int Version = 2;
        public const int DefaultPort = 47841;
        public const int MaxMessageBytes = 64 * 1024;
        public const int MaxErrorsPerConnection = 32;
        public const int HandshakeTimeoutMs = 2000;
        public const int MaxPendingHandshakes = 16;
        public const int SendQueueLimit = 256;
        public const int SendTimeoutMs = 1000;
        public const int MaxQueuedRequests = 64;
        public const int NonceHex = 64;
        const string ServerLabel = "gta5drive-v2 server";
        const string ClientLabel = "gta5drive-v2 client";
        public static readonly string[] Cameras = { "hood", "cinematic", "extra" };
        public static readonly string[] Weathers = {
            "EXTRASUNNY", "CLEAR", "CLOUDS", "SMOG", "FOGGY", "OVERCAST", "RAIN", "THUNDER",
            "CLEARING", "NEUTRAL", "SNOW", "BLIZZARD", "SNOWLIGHT", "XMAS", "HALLOWEEN" };

        const double IdMax = 2147483647;

        public static readonly Dictionary<string, Dictionary<string, Field>> Requests =
            new Dictionary<string, Dictionary<string, Field>>
        {
            { "hello", new Dictionary<string, Field> {
                { "version", new Field("int", true, 0, IdMax) },
                { "nonce", new Field("hex", true) },
                { "client", new Field("string", false, 0, 64) } } },
            { "auth", new Dictionary<string, Field> { { "proof", new Field("hex", true) } } },
            { "telemetry", new Dictionary<string, Field>() },
            { "subscribe", new Dictionary<string, Field> { { "enabled", new Field("bool", true) } } },
            { "step", new Dictionary<string, Field> { { "frames", new Field("int", false, 1, 300) } } },
            { "reset", new Dictionary<string, Field> {
                { "seed", new Field("int", true, 0, IdMax) },
                { "vehicle", new Field("string", false, 0, 32) } } },
            { "set_purpose", new Dictionary<string, Field> {
                { "x", new Field("float", true) }, { "y", new Field("float", true) },
                { "z", new Field("float", false) }, { "marker", new Field("bool", false) } } },
            { "new_purpose", new Dictionary<string, Field> {
                { "seed", new Field("int", true, 0, IdMax) },
                { "min_distance", new Field("float", false, 0, 1e5) },
                { "max_distance", new Field("float", false, 0, 1e5) },
                { "marker", new Field("bool", false) } } },
            { "autopilot", new Dictionary<string, Field> {
                { "enabled", new Field("bool", true) },
                { "x", new Field("float", false) }, { "y", new Field("float", false) },
                { "speed", new Field("float", false, 0, 100) },
                { "style", new Field("int", false, 0, IdMax) } } },
            { "teleport", new Dictionary<string, Field> {
                { "x", new Field("float", false) }, { "y", new Field("float", false) },
                { "z", new Field("float", false) }, { "heading", new Field("float", false, -720, 720) },
                { "seed", new Field("int", false, 0, IdMax) },
                { "fade_ms", new Field("int", false, 0, 10000) } } },
            { "fade", new Dictionary<string, Field> {
                { "level", new Field("float", true, 0, 1) }, { "ms", new Field("int", false, 0, 10000) } } },
            { "set_camera", new Dictionary<string, Field> { { "camera", new Field("string", true, 0, 16, Cameras) } } },
            { "camera_cycle", new Dictionary<string, Field> { { "cameras", new Field("cameras", true, 0, 3) } } },
            { "weather", new Dictionary<string, Field> { { "weather", new Field("string", true, 0, 16, Weathers) } } },
            { "time", new Dictionary<string, Field> {
                { "hour", new Field("int", true, 0, 23) }, { "minute", new Field("int", false, 0, 59) } } },
            { "controls", new Dictionary<string, Field> {
                { "throttle", new Field("float", true, 0, 1) }, { "brake", new Field("float", true, 0, 1) },
                { "steer", new Field("float", true, -1, 1) } } },
            { "pause", new Dictionary<string, Field> { { "paused", new Field("bool", true) } } },
            { "bye", new Dictionary<string, Field>() },
        };

        /// <summary>Parse a frame payload into a request object; throws ProtocolError with the reason.</summary>
        public static Dictionary<string, object> Decode(byte[] payload, out long id)
        {
            id = 0;
            string text;
            try { text = new UTF8Encoding(false, true).GetString(payload); }
            catch (ArgumentException) { throw new ProtocolError("message is not valid UTF-8"); }
            object parsed;
            try { parsed = MiniJson.Parse(text); }
            catch (JsonError e) { throw new ProtocolError("message is not valid JSON: " + e.Message); }
            var message = parsed as Dictionary<string, object>;
            if (message == null) throw new ProtocolError("message must be a JSON object");
            object type, rawId;
            if (!message.TryGetValue("type", out type) || !(type is string)) throw new ProtocolError("message has no string field 'type'");
            if (!message.TryGetValue("id", out rawId) || !(rawId is long) || (long)rawId < 0 || (long)rawId > IdMax)
                throw new ProtocolError("message.id must be an integer in [0, 2147483647]");
            id = (long)rawId;
            return message;
        }

        /// <summary>Check a request against its schema; throws ProtocolError naming the field.</summary>
        public static void Validate(Dictionary<string, object> message)
        {
            string type = (string)message["type"];
            Dictionary<string, Field> schema;
            if (!Requests.TryGetValue(type, out schema)) throw new ProtocolError("unknown request type '" + MiniJson.Clip(type) + "'");
            if (type != "hello" && type != "auth" && (long)message["id"] == 0) throw new ProtocolError("request id must be >= 1 (0 is reserved for the handshake)");
            foreach (var key in message.Keys)
                if (key != "type" && key != "id" && !schema.ContainsKey(key))
                    throw new ProtocolError(type + " has unknown field(s) ['" + MiniJson.Clip(key) + "']");
            foreach (var pair in schema)
            {
                object value;
                string path = type + "." + pair.Key;
                if (!message.TryGetValue(pair.Key, out value))
                {
                    if (pair.Value.Required) throw new ProtocolError(type + " is missing the required field '" + pair.Key + "'");
                    continue;
                }
                CheckField(pair.Value, value, path);
            }
            bool hasXY = message.ContainsKey("x") || message.ContainsKey("y");
            bool bothXY = message.ContainsKey("x") && message.ContainsKey("y");
            if (type == "teleport" && (hasXY == message.ContainsKey("seed") || (hasXY && !bothXY)))
                throw new ProtocolError("teleport needs either both x and y, or seed (not both)");
            if (type == "autopilot" && hasXY && !bothXY)
                throw new ProtocolError("autopilot needs both x and y, or neither (drive to the purpose)");
        }

        static void CheckField(Field f, object value, string path)
        {
            switch (f.Kind)
            {
                case "int":
                    if (!(value is long)) throw new ProtocolError(path + " must be an integer");
                    if ((long)value < f.Min || (long)value > f.Max) throw new ProtocolError(path + " must be in [" + f.Min + ", " + f.Max + "]");
                    break;
                case "float":
                    if (!(value is long || value is double)) throw new ProtocolError(path + " must be a number");
                    double d = Convert.ToDouble(value);
                    if (d < f.Min || d > f.Max) throw new ProtocolError(path + " must be finite and in [" + f.Min + ", " + f.Max + "]");
                    break;
                case "bool":
                    if (!(value is bool)) throw new ProtocolError(path + " must be true or false");
                    break;
                case "string":
                    var s = value as string;
                    if (s == null) throw new ProtocolError(path + " must be a string");
                    if (s.Length > f.Max) throw new ProtocolError(path + " is longer than " + f.Max + " characters");
                    if (f.Choices != null && Array.IndexOf(f.Choices, s) < 0)
                        throw new ProtocolError(path + " must be one of [" + string.Join(", ", f.Choices) + "]");
                    break;
                case "hex":
                    var h = value as string;
                    if (h == null || h.Length != NonceHex || !IsHex(h)) throw new ProtocolError(path + " must be " + NonceHex + " hexadecimal characters");
                    break;
                case "cameras":
                    var list = value as List<object>;
                    if (list == null || list.Count > f.Max) throw new ProtocolError(path + " must be a list of at most 3 cameras");
                    foreach (var item in list)
                        if (!(item is string) || Array.IndexOf(Cameras, (string)item) < 0)
                            throw new ProtocolError(path + " items must be one of [hood, cinematic, extra]");
                    break;
            }
        }

        static bool IsHex(string s)
        {
            foreach (char c in s)
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
            return true;
        }

        public static string MakeNonce()
        {
            var bytes = new byte[NonceHex / 2];
            using (var rng = new RNGCryptoServiceProvider()) rng.GetBytes(bytes);
            return Hex(bytes);
        }

        static string Hex(byte[] bytes) { return BitConverter.ToString(bytes).Replace("-", "").ToLowerInvariant(); }

        static string Proof(string label, string token, string clientNonce, string serverNonce)
        {
            using (var mac = new HMACSHA256(Encoding.UTF8.GetBytes(token)))
                return Hex(mac.ComputeHash(Encoding.ASCII.GetBytes(label + "|" + clientNonce + "|" + serverNonce)));
        }

        /// <summary>What the server sends to prove it knows the token (never valid as a client proof).</summary>
        public static string ServerProof(string token, string clientNonce, string serverNonce) { return Proof(ServerLabel, token, clientNonce, serverNonce); }

        /// <summary>What the client must send to prove it knows the token.</summary>
        public static string ClientProof(string token, string clientNonce, string serverNonce) { return Proof(ClientLabel, token, clientNonce, serverNonce); }

        /// <summary>Constant-time comparison of two ASCII strings.</summary>
        public static bool ConstantTimeEquals(string a, string b)
        {
            byte[] x = Encoding.UTF8.GetBytes(a), y = Encoding.UTF8.GetBytes(b);
            int diff = x.Length ^ y.Length;
            for (int i = 0; i < System.Math.Min(x.Length, y.Length); i++) diff |= x[i] ^ y[i];
            return diff == 0;
        }

        public static string ConfigDir()
        {
            string overrideDir = Environment.GetEnvironmentVariable("GTA5DRIVE_CONFIG_DIR");
            if (!string.IsNullOrEmpty(overrideDir)) return overrideDir;
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "gta5drive");
        }

        /// <summary>The shared token: GTA5DRIVE_BRIDGE_TOKEN, else the token file (created on first run).</summary>
        public static string LoadOrCreateToken()
        {
            string fromEnv = Environment.GetEnvironmentVariable("GTA5DRIVE_BRIDGE_TOKEN");
            if (!string.IsNullOrEmpty(fromEnv)) return fromEnv.Trim();
            string dir = ConfigDir();
            string path = Path.Combine(dir, "bridge_token");
            if (!File.Exists(path))
            {
                Directory.CreateDirectory(dir);
                var bytes = new byte[32];
                using (var rng = new RNGCryptoServiceProvider()) rng.GetBytes(bytes);
                string token = BitConverter.ToString(bytes).Replace("-", "").ToLowerInvariant();
                try
                {
                    // FileMode.CreateNew fails if the env created it meanwhile: then read theirs.
                    // %APPDATA% is readable by this Windows user only.
                    using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
                    using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
                        writer.Write(token + "\n");
                    return token;
                }
                catch (IOException) { }
            }
            string stored = File.ReadAllText(path).Trim();
            if (stored.Length == 0 || stored.Length > 256) throw new InvalidDataException("the bridge token file " + path + " is empty or malformed; delete it and restart");
            return stored;
        }
    }

    /// <summary>A validated request waiting for the script thread.</summary>
    public sealed class Request
    {
        public Connection Conn;
        public long Id;
        public string Type;
        public Dictionary<string, object> Fields;
    }

    /// <summary>
    /// One client: its reader runs on the connection's thread; what is sent to it goes through a
    /// bounded queue drained by its own writer thread, so Tick never blocks on a socket. A client
    /// whose queue fills, or whose socket stays unwritable for SendTimeoutMs, is dropped.
    /// </summary>
    public sealed class Connection
    {
        readonly TcpClient client;
        readonly NetworkStream stream;
        readonly BlockingCollection<byte[]> outbox = new BlockingCollection<byte[]>(Protocol.SendQueueLimit);
        public readonly string Peer;
        public readonly Stopwatch Age = Stopwatch.StartNew();
        public volatile bool Subscribed;
        public volatile bool Closed;
        public volatile string DropReason;
        public int Errors;
        int unwritten;  // queued or being written: Flush waits for 0
        /// <summary>Read deadline in ms since Age started (int.MaxValue: none).</summary>
        public long ReadDeadlineMs = long.MaxValue;

        public Connection(TcpClient client)
        {
            this.client = client;
            stream = client.GetStream();
            stream.WriteTimeout = Protocol.SendTimeoutMs;
            Peer = client.Client.RemoteEndPoint.ToString();
            var writer = new Thread(WriteLoop) { IsBackground = true, Name = "gta5drive-send-" + Peer };
            writer.Start();
        }

        /// <summary>Queue a message; never blocks. A full queue drops the client.</summary>
        public void Send(Dictionary<string, object> message)
        {
            if (Closed) return;
            byte[] payload = new UTF8Encoding(false).GetBytes(MiniJson.Write(message));
            if (payload.Length > Protocol.MaxMessageBytes) return;
            var frame = new byte[4 + payload.Length];
            frame[0] = (byte)(payload.Length >> 24); frame[1] = (byte)(payload.Length >> 16);
            frame[2] = (byte)(payload.Length >> 8); frame[3] = (byte)payload.Length;
            Buffer.BlockCopy(payload, 0, frame, 4, payload.Length);
            bool queued;
            Interlocked.Increment(ref unwritten);
            try { queued = outbox.TryAdd(frame); }
            catch (InvalidOperationException) { queued = false; }  // completed: closing
            if (!queued) Interlocked.Decrement(ref unwritten);
            if (!queued && !Closed) Drop("its send queue is full (" + Protocol.SendQueueLimit + " messages unread)");
        }

        void WriteLoop()
        {
            try
            {
                foreach (var frame in outbox.GetConsumingEnumerable())
                {
                    if (Closed) return;
                    stream.Write(frame, 0, frame.Length);  // WriteTimeout: a client that stopped reading
                    Interlocked.Decrement(ref unwritten);
                }
            }
            catch (Exception e) { Drop("a write blocked or failed (" + e.Message + ")"); }
        }

        /// <summary>Wait up to ms for the queued messages to be written (before a close).</summary>
        public void Flush(int ms)
        {
            var clock = Stopwatch.StartNew();
            while (Volatile.Read(ref unwritten) > 0 && !Closed && clock.ElapsedMilliseconds < ms) Thread.Sleep(2);
        }

        public void SendError(long id, string reason)
        {
            Send(new Dictionary<string, object> { { "type", "error" }, { "id", id }, { "reason", reason }, { "version", (long)Protocol.Version } });
        }

        /// <summary>Read one frame; null on a clean close. Throws ProtocolError for a bad length, IOException if truncated or past the deadline.</summary>
        public byte[] ReadFrame()
        {
            byte[] header = ReadExact(4, true);
            if (header == null) return null;
            int length = (header[0] << 24) | (header[1] << 16) | (header[2] << 8) | header[3];
            if (length <= 0 || length > Protocol.MaxMessageBytes)
                throw new ProtocolError("announced message length " + (uint)length + " is outside 1.." + Protocol.MaxMessageBytes + " bytes");
            return ReadExact(length, false);
        }

        byte[] ReadExact(int n, bool eofOk)
        {
            var buffer = new byte[n];
            int got = 0;
            while (got < n)
            {
                if (ReadDeadlineMs != long.MaxValue)
                {
                    // One deadline for the whole handshake, not a timeout per read.
                    long remaining = ReadDeadlineMs - Age.ElapsedMilliseconds;
                    if (remaining <= 0) throw new IOException("the handshake did not complete within the timeout");
                    stream.ReadTimeout = (int)System.Math.Max(1, remaining);
                }
                int r = stream.Read(buffer, got, n - got);
                if (r <= 0)
                {
                    if (got == 0 && eofOk) return null;
                    throw new IOException("truncated message: connection closed after " + got + " of " + n + " bytes");
                }
                got += r;
            }
            return buffer;
        }

        public void ClearReadDeadline()
        {
            ReadDeadlineMs = long.MaxValue;
            stream.ReadTimeout = System.Threading.Timeout.Infinite;
        }

        public void Drop(string reason)
        {
            if (Closed) return;
            DropReason = reason;
            Close();
        }

        public void Close()
        {
            Closed = true;
            try { outbox.CompleteAdding(); } catch (Exception) { }
            try { client.Close(); } catch (Exception) { }
        }
    }

    /// <summary>Loopback-only TCP server feeding validated requests into a bounded queue.</summary>
    public sealed class BridgeServer
    {
        readonly string token;
        readonly int port;
        readonly TcpListener listener;
        readonly List<Connection> connections = new List<Connection>();  // authenticated
        readonly List<Connection> pending = new List<Connection>();      // in the handshake, oldest first
        public readonly ConcurrentQueue<Request> Requests = new ConcurrentQueue<Request>();
        public readonly ConcurrentQueue<string> Log = new ConcurrentQueue<string>();
        public int MaxClients = 4;
        public string Name = "gta5drive-mod";
        volatile bool stopping;

        public BridgeServer(int port, string token)
        {
            if (string.IsNullOrEmpty(token)) throw new ArgumentException("the bridge needs a non-empty token");
            this.port = port;
            this.token = token;
            // Loopback only: never IPAddress.Any.
            listener = new TcpListener(IPAddress.Loopback, port);
        }

        public void Start()
        {
            listener.Start(64);
            var thread = new Thread(AcceptLoop) { IsBackground = true, Name = "gta5drive-accept" };
            thread.Start();
            Note("listening on 127.0.0.1:" + port);
        }

        public void Stop()
        {
            stopping = true;
            try { listener.Stop(); } catch (Exception) { }
            lock (connections)
            {
                foreach (var c in connections) c.Close();
                foreach (var c in pending) c.Close();
                connections.Clear();
                pending.Clear();
            }
        }

        public void Note(string line)
        {
            Log.Enqueue(DateTime.Now.ToString("HH:mm:ss") + " " + line);
            string dropped;
            while (Log.Count > 200 && Log.TryDequeue(out dropped)) { }
        }

        public void Reject(Connection conn, long id, string reason)
        {
            Note("rejected from " + (conn == null ? "?" : conn.Peer) + ": " + reason);
            if (conn != null) conn.SendError(id, reason);
        }

        /// <summary>Queue telemetry for every subscriber; never blocks (a full queue drops that client).</summary>
        public void Push(Dictionary<string, object> telemetry)
        {
            var message = new Dictionary<string, object> { { "type", "telemetry" }, { "id", 0L }, { "telemetry", telemetry } };
            Connection[] targets;
            lock (connections) targets = connections.ToArray();
            foreach (var c in targets)
            {
                if (!c.Subscribed) continue;
                c.Send(message);
                if (c.DropReason != null) Note("dropped " + c.Peer + ": " + c.DropReason);
            }
        }

        /// <summary>Whether any client is subscribed (Tick skips building telemetry otherwise).</summary>
        public bool HasSubscribers
        {
            get { lock (connections) { foreach (var c in connections) if (c.Subscribed && !c.Closed) return true; } return false; }
        }

        void AcceptLoop()
        {
            while (!stopping)
            {
                TcpClient client;
                try { client = listener.AcceptTcpClient(); }
                catch (Exception) { if (stopping) return; continue; }
                var endpoint = client.Client.RemoteEndPoint as IPEndPoint;
                if (endpoint == null || !IPAddress.IsLoopback(endpoint.Address)) { client.Close(); continue; }
                client.NoDelay = true;
                var conn = new Connection(client);
                conn.ReadDeadlineMs = Protocol.HandshakeTimeoutMs;
                Connection evicted = null;
                lock (connections)
                {
                    // Unauthenticated connections have their own cap and the oldest makes room:
                    // sockets that never finish the handshake cannot lock valid clients out.
                    if (pending.Count >= Protocol.MaxPendingHandshakes) { evicted = pending[0]; pending.RemoveAt(0); }
                    pending.Add(conn);
                }
                if (evicted != null) { Note("evicted " + evicted.Peer + " from the handshake by a newer connection"); evicted.Close(); }
                var thread = new Thread(() => Serve(conn)) { IsBackground = true, Name = "gta5drive-" + conn.Peer };
                thread.Start();
            }
        }

        void Serve(Connection conn)
        {
            try
            {
                if (Handshake(conn)) ReadRequests(conn);
            }
            catch (Exception e) { Note("connection " + conn.Peer + " ended: " + e.Message); }
            finally
            {
                lock (connections) { connections.Remove(conn); pending.Remove(conn); }
                conn.Flush(200);
                conn.Close();
            }
        }

        Dictionary<string, object> ReadHandshakeMessage(Connection conn, string kind)
        {
            byte[] payload = conn.ReadFrame();
            if (payload == null) throw new IOException("connection closed");
            long id;
            var message = Protocol.Decode(payload, out id);
            if ((string)message["type"] != kind)
                throw new ProtocolError("the " + (kind == "hello" ? "first" : "second") + " message must be '" + kind + "'");
            Protocol.Validate(message);
            return message;
        }

        bool Handshake(Connection conn)
        {
            Dictionary<string, object> hello, auth;
            string nonce;
            try
            {
                hello = ReadHandshakeMessage(conn, "hello");
                if ((long)hello["version"] != Protocol.Version)
                {
                    Reject(conn, 0, "protocol version " + hello["version"] + " is not supported (server speaks " + Protocol.Version + "); update the mod and the Python package together");
                    return false;
                }
                nonce = Protocol.MakeNonce();
                conn.Send(new Dictionary<string, object> {
                    { "type", "challenge" }, { "id", 0L }, { "version", (long)Protocol.Version }, { "nonce", nonce },
                    { "proof", Protocol.ServerProof(token, (string)hello["nonce"], nonce) } });
                auth = ReadHandshakeMessage(conn, "auth");
            }
            catch (ProtocolError e) { Reject(conn, 0, "bad handshake: " + e.Message); return false; }
            catch (IOException e) { Reject(conn, 0, "the handshake did not complete within the timeout or failed: " + e.Message); return false; }
            string expected = Protocol.ClientProof(token, (string)hello["nonce"], nonce);
            if (!Protocol.ConstantTimeEquals(expected, (string)auth["proof"])) { Reject(conn, 0, "wrong token (the client's proof does not match)"); return false; }
            bool full;
            lock (connections)
            {
                pending.Remove(conn);
                full = connections.Count >= MaxClients;
                if (!full && !conn.Closed) connections.Add(conn);
            }
            if (conn.Closed) return false;
            if (full) { Reject(conn, 0, "too many clients (max " + MaxClients + ")"); return false; }
            conn.ClearReadDeadline();
            conn.Send(new Dictionary<string, object> { { "type", "welcome" }, { "id", 0L }, { "version", (long)Protocol.Version }, { "server", Name } });
            Note("client " + conn.Peer + " connected");
            return true;
        }

        void ReadRequests(Connection conn)
        {
            while (!stopping && !conn.Closed)
            {
                byte[] payload;
                try { payload = conn.ReadFrame(); }
                catch (ProtocolError e) { Reject(conn, 0, e.Message + "; closing the connection"); return; }
                catch (IOException e) { Note(conn.Peer + ": " + e.Message); return; }
                if (payload == null) return;
                long id = 0;
                Dictionary<string, object> message;
                try
                {
                    message = Protocol.Decode(payload, out id);
                    Protocol.Validate(message);
                    string kind = (string)message["type"];
                    if (kind == "hello" || kind == "auth") throw new ProtocolError("'" + kind + "' is only valid in the handshake");
                }
                catch (ProtocolError e)
                {
                    Reject(conn, id, e.Message);
                    if (++conn.Errors >= Protocol.MaxErrorsPerConnection)
                    {
                        Reject(conn, 0, "too many invalid messages; closing the connection");
                        return;
                    }
                    continue;
                }
                string type = (string)message["type"];
                if (type == "bye") return;
                if (Requests.Count >= Protocol.MaxQueuedRequests) { Reject(conn, id, "server busy: too many queued requests (is the game paused in a menu?)"); continue; }
                message.Remove("type");
                message.Remove("id");
                Requests.Enqueue(new Request { Conn = conn, Id = id, Type = type, Fields = message });
            }
        }
    }
}

#if !GTA5DRIVE_SELFTEST
// ---- The script. Every frame (Tick) it executes the queued bridge requests on the script thread,
// advances the pending ones (a step waiting for 1/30 s of game time, a camera waiting to be
// rendered, a reset or teleport waiting for collision to stream in), draws the purpose marker and
// queues telemetry for subscribers.
namespace Gta5Drive
{
    public sealed class Gta5DriveMod : Script
    {
        const float FrameSeconds = 1f / 30f;
        const float MaxSteerDegrees = 40f;  // typical handling fSteeringLock; used to scale to [-1, 1]

        readonly BridgeServer server;
        readonly string startupError;
        bool startupErrorShown;
        long frame;
        bool lockstep;
        bool autopilot;
        Vector3? purpose;
        bool purposeMarker;
        Blip purposeBlip;
        string camera = "cinematic";
        string[] cycle = new string[0];
        Camera hoodCam, extraCam;
        int camCarHandle;  // the car the scripted cameras are attached to
        float fade;
        float lastSpeed;
        Random rng = new Random(0);
        bool bridgeControls;
        float ctlThrottle, ctlBrake, ctlSteer;

        // Pending operations, finished on later ticks.
        Request pendingStep;
        float stepRemaining;
        Request pendingCamera;
        long cameraReadyFrame;
        Request pendingTeleport;
        int teleportStage;
        int teleportFadeMs;
        long teleportWaitUntilFrame;
        long teleportGiveUpFrame;
        Vector3 teleportTarget;
        float teleportHeading;
        Request pendingReset;
        long resetWaitUntilFrame;
        long resetGiveUpFrame;
        const int MinSettleFrames = 5;       // frames after a move before collision is even checked
        const int MaxCollisionWaitFrames = 150;  // ~5 s at 30 FPS: then reply anyway, noted in the log

        public Gta5DriveMod()
        {
            Interval = 0;
            try
            {
                int port = Protocol.DefaultPort;
                int parsed;
                string fromEnv = Environment.GetEnvironmentVariable("GTA5DRIVE_BRIDGE_PORT");
                if (!string.IsNullOrEmpty(fromEnv) && int.TryParse(fromEnv, out parsed) && parsed > 0 && parsed < 65536) port = parsed;
                server = new BridgeServer(port, Protocol.LoadOrCreateToken());
                server.Start();
            }
            catch (Exception e)
            {
                startupError = "gta5drive bridge did not start: " + e.Message;
            }
            Tick += OnTick;
            Aborted += OnAborted;
        }

        void OnAborted(object sender, EventArgs e)
        {
            if (server != null) server.Stop();
            Game.Pause(false);
            Game.TimeScale = 1f;
            World.RenderingCamera = null;
            if (hoodCam != null) hoodCam.Delete();
            if (extraCam != null) extraCam.Delete();
            if (purposeBlip != null) purposeBlip.Delete();
        }

        static Ped Player { get { return Game.Player.Character; } }

        static Vehicle Car
        {
            get { var p = Player; return p != null && p.IsInVehicle() ? p.CurrentVehicle : null; }
        }

        void OnTick(object sender, EventArgs e)
        {
            if (startupError != null)
            {
                // Once, not every frame: the notification feed would be flooded.
                if (!startupErrorShown) { GTA.UI.Notification.Show(startupError); startupErrorShown = true; }
                return;
            }
            frame++;
            Request request;
            while (server.Requests.TryDequeue(out request))
            {
                if (request.Conn.Closed) continue;
                try { Execute(request); }
                catch (Exception ex) { server.Reject(request.Conn, request.Id, request.Type + ": " + ex.Message); }
            }
            if (bridgeControls && !autopilot)
            {
                // Controls 71/72/59: INPUT_VEH_ACCELERATE, INPUT_VEH_BRAKE, INPUT_VEH_MOVE_LR (+ = right).
                // SET_CONTROL_VALUE_NEXT_FRAME is what SHVDN <= 3.5 called _SET_CONTROL_NORMAL (same hash).
                Function.Call(Hash.SET_CONTROL_VALUE_NEXT_FRAME, 0, 71, ctlThrottle);
                Function.Call(Hash.SET_CONTROL_VALUE_NEXT_FRAME, 0, 72, ctlBrake);
                Function.Call(Hash.SET_CONTROL_VALUE_NEXT_FRAME, 0, 59, ctlSteer);
            }
            AdvancePending();
            if (cycle.Length > 0) ShowCamera(cycle[(int)(frame % cycle.Length)]);
            if (purpose.HasValue && purposeMarker)
                World.DrawMarker(MarkerType.VerticalCylinder, purpose.Value, Vector3.Zero, Vector3.Zero,
                    new Vector3(3f, 3f, 30f), System.Drawing.Color.FromArgb(160, 255, 200, 0));
            if (Car != null && server.HasSubscribers) server.Push(Telemetry());
        }

        static void Ok(Request r, Dictionary<string, object> payload = null)
        {
            var reply = new Dictionary<string, object> { { "type", "ok" }, { "id", r.Id } };
            if (payload != null) foreach (var pair in payload) reply[pair.Key] = pair.Value;
            r.Conn.Send(reply);
        }

        static float F(Request r, string name, float fallback)
        {
            object v;
            return r.Fields.TryGetValue(name, out v) ? Convert.ToSingle(v) : fallback;
        }

        static long L(Request r, string name, long fallback)
        {
            object v;
            return r.Fields.TryGetValue(name, out v) ? (long)v : fallback;
        }

        static bool B(Request r, string name, bool fallback)
        {
            object v;
            return r.Fields.TryGetValue(name, out v) ? (bool)v : fallback;
        }

        Vehicle RequireCar()
        {
            var car = Car;
            if (car == null) throw new InvalidOperationException("the player is not in a vehicle; send 'reset' first");
            return car;
        }

        void Execute(Request r)
        {
            switch (r.Type)
            {
                case "telemetry":
                    RequireCar();
                    Ok(r, new Dictionary<string, object> { { "telemetry", Telemetry() } });
                    break;
                case "subscribe":
                    r.Conn.Subscribed = B(r, "enabled", false);
                    Ok(r);
                    break;
                case "step":
                    RequireCar();
                    if (pendingStep != null) throw new InvalidOperationException("a step is already in progress");
                    pendingStep = r;
                    stepRemaining = L(r, "frames", 1) * FrameSeconds;
                    Game.Pause(false);  // runs until AdvancePending has seen the frames' game time
                    break;
                case "reset": Reset(r); break;
                case "set_purpose":
                    SetPurpose(new Vector3(F(r, "x", 0), F(r, "y", 0), F(r, "z", RequireCar().Position.Z)), B(r, "marker", false));
                    Ok(r, new Dictionary<string, object> { { "purpose", new List<object> { (double)purpose.Value.X, (double)purpose.Value.Y } } });
                    break;
                case "new_purpose": NewPurpose(r); break;
                case "autopilot": Autopilot(r); break;
                case "teleport": StartTeleport(r); break;
                case "fade":
                    int ms = (int)L(r, "ms", 0);
                    fade = F(r, "level", 0);
                    if (fade >= 0.5f) GTA.UI.Screen.FadeOut(ms); else GTA.UI.Screen.FadeIn(ms);
                    Ok(r);
                    break;
                case "set_camera":
                    if (pendingCamera != null) throw new InvalidOperationException("a camera change is already in progress");
                    cycle = new string[0];
                    ShowCamera((string)r.Fields["camera"]);
                    pendingCamera = r;
                    cameraReadyFrame = frame + 2;  // switched now, rendered at the end of this frame, presented by the next
                    break;
                case "camera_cycle":
                    var names = (List<object>)r.Fields["cameras"];
                    cycle = names.ConvertAll(n => (string)n).ToArray();
                    Ok(r);
                    break;
                case "weather":
                    Function.Call(Hash.SET_WEATHER_TYPE_NOW_PERSIST, (string)r.Fields["weather"]);
                    Ok(r);
                    break;
                case "time":
                    Function.Call(Hash.SET_CLOCK_TIME, (int)L(r, "hour", 12), (int)L(r, "minute", 0), 0);
                    Ok(r);
                    break;
                case "controls":
                    bridgeControls = true;
                    ctlThrottle = F(r, "throttle", 0);
                    ctlBrake = F(r, "brake", 0);
                    ctlSteer = F(r, "steer", 0);
                    Ok(r);
                    break;
                case "pause":
                    lockstep = B(r, "paused", false);
                    // Game.Pause (SET_GAME_PAUSED) freezes the world; SET_TIME_SCALE(0) does not
                    // (the game clamps it to a minimum scale, so time still creeps).
                    if (pendingStep == null && pendingReset == null && pendingTeleport == null) Game.Pause(lockstep);
                    Ok(r);
                    break;
                default:
                    throw new InvalidOperationException("'" + r.Type + "' is not supported by this mod version");
            }
        }

        void AdvancePending()
        {
            if (pendingStep != null)
            {
                stepRemaining -= Game.LastFrameTime;
                if (stepRemaining <= 1e-4f)
                {
                    if (lockstep) Game.Pause(true);
                    var r = pendingStep;
                    pendingStep = null;
                    Ok(r, new Dictionary<string, object> { { "telemetry", Telemetry() } });
                }
            }
            if (pendingCamera != null && frame >= cameraReadyFrame)
            {
                var r = pendingCamera;
                pendingCamera = null;
                Ok(r, new Dictionary<string, object> { { "camera", camera }, { "frame", frame } });
            }
            if (pendingTeleport != null) AdvanceTeleport();
            if (pendingReset != null) AdvanceReset();
        }

        /// <summary>A street point near guess; false when the game returned Vector3.Zero (no road data loaded there).</summary>
        static bool TryStreet(Vector3 guess, out Vector3 street)
        {
            street = World.GetNextPositionOnStreet(guess);
            return System.Math.Abs(street.X) + System.Math.Abs(street.Y) + System.Math.Abs(street.Z) > 1e-3f;
        }

        static InvalidOperationException NoRoadData(string what)
        {
            return new InvalidOperationException(what + ": the game returned no street position (road data not loaded there yet); retry in a few seconds, or reset near the player");
        }

        /// <summary>True once the world's collision around the car is loaded (or after the give-up frame).</summary>
        bool CollisionReady(Vehicle car, long waitUntil, long giveUp)
        {
            if (frame < waitUntil || Game.IsLoading) return false;
            if (Function.Call<bool>(Hash.HAS_COLLISION_LOADED_AROUND_ENTITY, car.Handle)) return true;
            if (frame >= giveUp) { server.Note("collision around the car was not loaded after " + MaxCollisionWaitFrames + " frames; continuing"); return true; }
            Function.Call(Hash.REQUEST_COLLISION_AT_COORD, car.Position.X, car.Position.Y, car.Position.Z);
            return false;
        }

        void Reset(Request r)
        {
            if (pendingReset != null || pendingTeleport != null) throw new InvalidOperationException("a reset or teleport is already in progress");
            autopilot = false;
            Function.Call(Hash.CLEAR_PED_TASKS, Player.Handle);
            rng = new Random((int)L(r, "seed", 0));
            // Start somewhere on a street within ~1.5 km of downtown Los Santos, chosen by the seed.
            var centre = new Vector3(-200f, -800f, 30f);
            Vector3 spot = Vector3.Zero;
            bool found = false;
            for (int attempt = 0; attempt < 8 && !found; attempt++) found = TryStreet(centre + RandomOffset(0f, 1500f), out spot);
            if (!found) throw NoRoadData("reset");
            var car = Car;
            if (car == null)
            {
                object name;
                string vehicle = r.Fields.TryGetValue("vehicle", out name) ? (string)name : "blista";
                var model = new Model(vehicle);
                if (!model.IsValid || !model.Request(2000)) throw new InvalidOperationException("vehicle model '" + vehicle + "' could not be loaded; check the name or retry");
                car = World.CreateVehicle(model, spot, 0f);
                model.MarkAsNoLongerNeeded();
                if (car == null) throw new InvalidOperationException("the game did not spawn a '" + vehicle + "' (vehicle pool full or model not streamed); retry reset");
                Function.Call(Hash.SET_PED_INTO_VEHICLE, Player.Handle, car.Handle, -1);
            }
            car.IsRecordingCollisions = true;  // HasCollided reports nothing without it
            Game.Pause(false);  // the world must run to stream collision in
            PlaceCar(car, spot, HeadingAt(spot));
            car.Repair();
            if (purposeBlip != null) { purposeBlip.Delete(); purposeBlip = null; }
            purpose = null;
            cycle = new string[0];
            frame = 0;
            lastSpeed = 0f;
            pendingReset = r;
            resetWaitUntilFrame = frame + MinSettleFrames;
            resetGiveUpFrame = frame + MaxCollisionWaitFrames;
        }

        void AdvanceReset()
        {
            var car = Car;
            if (car == null) { server.Reject(pendingReset.Conn, pendingReset.Id, "reset: the player left the vehicle"); pendingReset = null; return; }
            if (!CollisionReady(car, resetWaitUntilFrame, resetGiveUpFrame)) return;
            Function.Call(Hash.SET_VEHICLE_ON_GROUND_PROPERLY, car.Handle);
            car.Velocity = Vector3.Zero;
            if (lockstep && pendingStep == null) Game.Pause(true);
            var r = pendingReset;
            pendingReset = null;
            frame = 0;
            Ok(r, new Dictionary<string, object> { { "telemetry", Telemetry() } });
        }

        Vector3 RandomOffset(float min, float max)
        {
            double angle = rng.NextDouble() * 2 * System.Math.PI;
            double dist = min + rng.NextDouble() * (max - min);
            return new Vector3((float)(System.Math.Cos(angle) * dist), (float)(System.Math.Sin(angle) * dist), 0f);
        }

        static float HeadingAt(Vector3 spot)
        {
            var outPos = new OutputArgument();
            var outHeading = new OutputArgument();
            bool found = Function.Call<bool>(Hash.GET_CLOSEST_VEHICLE_NODE_WITH_HEADING, spot.X, spot.Y, spot.Z, outPos, outHeading, 1, 3f, 0);
            outPos.Dispose();
            float heading = found ? outHeading.GetResult<float>() : 0f;
            outHeading.Dispose();
            return heading;
        }

        static void PlaceCar(Vehicle car, Vector3 spot, float heading)
        {
            Function.Call(Hash.REQUEST_COLLISION_AT_COORD, spot.X, spot.Y, spot.Z);
            Function.Call(Hash.SET_ENTITY_COORDS_NO_OFFSET, car.Handle, spot.X, spot.Y, spot.Z, false, false, false);
            Function.Call(Hash.SET_ENTITY_HEADING, car.Handle, heading);
            Function.Call(Hash.SET_VEHICLE_ON_GROUND_PROPERLY, car.Handle);
            car.Velocity = Vector3.Zero;
        }

        void SetPurpose(Vector3 point, bool marker)
        {
            purpose = point;
            purposeMarker = marker;
            if (purposeBlip != null) purposeBlip.Delete();
            purposeBlip = null;
            if (marker)
            {
                purposeBlip = World.CreateBlip(point);
                purposeBlip.Sprite = BlipSprite.Waypoint;
                purposeBlip.ShowRoute = true;
            }
        }

        void NewPurpose(Request r)
        {
            var car = RequireCar();
            var local = new Random((int)L(r, "seed", 0));
            float min = F(r, "min_distance", 150f), max = F(r, "max_distance", 1500f);
            if (min > max) throw new InvalidOperationException("min_distance must not exceed max_distance");
            Vector3 best = Vector3.Zero;
            bool any = false;
            for (int attempt = 0; attempt < 12; attempt++)
            {
                double angle = local.NextDouble() * 2 * System.Math.PI;
                double dist = min + local.NextDouble() * (max - min);
                var guess = car.Position + new Vector3((float)(System.Math.Cos(angle) * dist), (float)(System.Math.Sin(angle) * dist), 0f);
                Vector3 street;
                if (!TryStreet(guess, out street)) continue;  // Vector3.Zero: no road data there
                best = street;
                any = true;
                float d = best.DistanceTo2D(car.Position);
                if (d >= min && d <= max) break;
            }
            if (!any) throw NoRoadData("new_purpose");
            SetPurpose(best, B(r, "marker", false));
            Ok(r, new Dictionary<string, object> { { "purpose", new List<object> { (double)best.X, (double)best.Y } } });
        }

        void Autopilot(Request r)
        {
            var car = RequireCar();
            autopilot = B(r, "enabled", false);
            if (!autopilot)
            {
                Function.Call(Hash.CLEAR_PED_TASKS, Player.Handle);
                Ok(r);
                return;
            }
            Vector3 target;
            if (r.Fields.ContainsKey("x")) { if (!TryStreet(new Vector3(F(r, "x", 0), F(r, "y", 0), car.Position.Z), out target)) throw NoRoadData("autopilot"); }
            else if (purpose.HasValue) target = purpose.Value;
            else throw new InvalidOperationException("no purpose point: send new_purpose or give x and y");
            Function.Call(Hash.TASK_VEHICLE_DRIVE_TO_COORD_LONGRANGE, Player.Handle, car.Handle, target.X, target.Y, target.Z,
                F(r, "speed", 20f), (int)L(r, "style", 786603), 10f);
            Ok(r);
        }

        void StartTeleport(Request r)
        {
            var car = RequireCar();
            if (pendingTeleport != null || pendingReset != null) throw new InvalidOperationException("a reset or teleport is already in progress");
            if (r.Fields.ContainsKey("seed"))
            {
                var local = new Random((int)L(r, "seed", 0));
                bool found = false;
                for (int attempt = 0; attempt < 8 && !found; attempt++)
                {
                    double angle = local.NextDouble() * 2 * System.Math.PI;
                    double dist = 200 + local.NextDouble() * 1800;
                    var guess = car.Position + new Vector3((float)(System.Math.Cos(angle) * dist), (float)(System.Math.Sin(angle) * dist), 0f);
                    found = TryStreet(guess, out teleportTarget);
                }
                if (!found) throw NoRoadData("teleport");
                teleportHeading = HeadingAt(teleportTarget);
            }
            else
            {
                teleportTarget = new Vector3(F(r, "x", 0), F(r, "y", 0), F(r, "z", car.Position.Z));
                teleportHeading = F(r, "heading", car.Heading);
            }
            teleportFadeMs = (int)L(r, "fade_ms", 0);
            pendingTeleport = r;
            teleportStage = 0;
            Game.Pause(false);  // fades and streaming need the world running
            if (teleportFadeMs > 0) GTA.UI.Screen.FadeOut(teleportFadeMs);
        }

        void AdvanceTeleport()
        {
            var car = Car;
            if (car == null) { server.Reject(pendingTeleport.Conn, pendingTeleport.Id, "teleport: the player left the vehicle"); pendingTeleport = null; return; }
            switch (teleportStage)
            {
                case 0:  // wait for the fade-out, then move and let the world stream in
                    if (teleportFadeMs > 0 && !GTA.UI.Screen.IsFadedOut) return;
                    PlaceCar(car, teleportTarget, teleportHeading);
                    teleportWaitUntilFrame = frame + MinSettleFrames;
                    teleportGiveUpFrame = frame + MaxCollisionWaitFrames;
                    teleportStage = 1;
                    return;
                case 1:
                    if (!CollisionReady(car, teleportWaitUntilFrame, teleportGiveUpFrame)) return;
                    Function.Call(Hash.SET_VEHICLE_ON_GROUND_PROPERLY, car.Handle);
                    if (teleportFadeMs > 0) GTA.UI.Screen.FadeIn(teleportFadeMs);
                    teleportStage = 2;
                    return;
                default:
                    if (teleportFadeMs > 0 && !GTA.UI.Screen.IsFadedIn) return;
                    var r = pendingTeleport;
                    pendingTeleport = null;
                    if (lockstep && pendingStep == null) Game.Pause(true);
                    var p = car.Position;
                    Ok(r, new Dictionary<string, object> { { "position", new List<object> { (double)p.X, (double)p.Y, (double)p.Z } } });
                    return;
            }
        }

        void ShowCamera(string name)
        {
            var car = Car;
            if (car == null) return;
            if (car.Handle != camCarHandle)
            {
                // reset spawned another car: cameras attached to the old one would float away.
                if (hoodCam != null) { hoodCam.Delete(); hoodCam = null; }
                if (extraCam != null) { extraCam.Delete(); extraCam = null; }
                camCarHandle = car.Handle;
            }
            if (name == "cinematic")
            {
                World.RenderingCamera = null;  // the gameplay (3rd-person chase) camera
            }
            else if (name == "hood")
            {
                if (hoodCam == null)
                {
                    hoodCam = World.CreateCamera(car.Position, Vector3.Zero, 70f);
                    hoodCam.AttachTo(car, new Vector3(0f, 0.9f, 0.85f));
                }
                hoodCam.PointAt(car, new Vector3(0f, 20f, 0.5f));
                World.RenderingCamera = hoodCam;
            }
            else
            {
                if (extraCam == null)
                {
                    extraCam = World.CreateCamera(car.Position, Vector3.Zero, 60f);
                    extraCam.AttachTo(car, new Vector3(0f, -2f, 12f));  // high chase: sees the road around the car
                }
                extraCam.PointAt(car, Vector3.Zero);
                World.RenderingCamera = extraCam;
            }
            camera = name;
        }

        Dictionary<string, object> Telemetry()
        {
            var car = Car;
            var p = car.Position;
            var local = Function.Call<Vector3>(Hash.GET_ENTITY_SPEED_VECTOR, car.Handle, true);
            float speed = local.Y;  // forward component, m/s
            var collisions = new List<object>();
            if (car.HasCollided)
            {
                float impulse = System.Math.Max(lastSpeed - speed, 0f);  // speed lost this frame, m/s
                foreach (var other in World.GetNearbyVehicles(p, 8f))
                    if (other.Handle != car.Handle && car.IsTouching(other))
                        collisions.Add(Collision("vehicle", other.DisplayName, impulse));
                foreach (var ped in World.GetNearbyPeds(p, 6f))
                    if (ped.Handle != Player.Handle && car.IsTouching(ped))
                        collisions.Add(Collision("ped", "pedestrian", impulse));
                if (collisions.Count == 0) collisions.Add(Collision("static", "world", impulse));
            }
            lastSpeed = speed;
            float remaining = -1f;
            if (purpose.HasValue)
            {
                var q = purpose.Value;
                remaining = Function.Call<float>(Hash.CALCULATE_TRAVEL_DISTANCE_BETWEEN_POINTS, p.X, p.Y, p.Z, q.X, q.Y, q.Z);
                if (remaining <= 0f || remaining >= 100000f) remaining = -1f;  // 100000 = no route found
            }
            float steer = Clamp(-car.SteeringAngle / MaxSteerDegrees, -1f, 1f);  // GTA: positive = left
            float throttle = Clamp(car.ThrottlePower, 0f, 1f);
            return new Dictionary<string, object>
            {
                { "frame", frame },
                { "game_time_ms", (long)Game.GameTime },
                { "position", new List<object> { (double)p.X, (double)p.Y, (double)p.Z } },
                { "heading_deg", (double)car.Heading },
                { "speed", (double)speed },
                { "on_road", Function.Call<bool>(Hash.IS_POINT_ON_ROAD, p.X, p.Y, p.Z, car.Handle) },
                { "purpose", purpose.HasValue ? new List<object> { (double)purpose.Value.X, (double)purpose.Value.Y } : null },
                { "route_remaining", (double)remaining },
                { "collisions", collisions.Count > 32 ? collisions.GetRange(0, 32) : collisions },
                { "camera", camera },
                { "npc", new Dictionary<string, object> {
                    { "active", autopilot },
                    { "throttle", (double)throttle },
                    { "brake", (double)Clamp(car.BrakePower, 0f, 1f) },
                    { "steer", (double)steer } } },
                { "paused", lockstep },
                { "fade", (double)fade },
            };
        }

        static Dictionary<string, object> Collision(string kind, string other, float impulse)
        {
            if (other == null) other = kind;
            if (other.Length > 64) other = other.Substring(0, 64);
            return new Dictionary<string, object> { { "kind", kind }, { "other", other }, { "impulse", (double)impulse } };
        }

        static float Clamp(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }
    }
}
#endif
