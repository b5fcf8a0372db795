// The gta5drive bridge, server side: loopback TCP, length-prefixed JSON frames, handshake with a
// shared token, size caps and schema validation of every request. Protocol version 1, defined in
// gta_env/gta5/protocol.py (the reference) and docs/gta5.md. Requests are validated on the
// connection's thread and queued; the script's Tick executes them on the game's script thread.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;

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
        public const int Version = 1;
        public const int DefaultPort = 47841;
        public const int MaxMessageBytes = 64 * 1024;
        public const int MaxErrorsPerConnection = 32;
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
                { "token", new Field("string", true, 0, 256) },
                { "client", new Field("string", false, 0, 64) } } },
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
            if (type != "hello" && (long)message["id"] == 0) throw new ProtocolError("request id must be >= 1 (0 is reserved for the handshake)");
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
                case "cameras":
                    var list = value as List<object>;
                    if (list == null || list.Count > f.Max) throw new ProtocolError(path + " must be a list of at most 3 cameras");
                    foreach (var item in list)
                        if (!(item is string) || Array.IndexOf(Cameras, (string)item) < 0)
                            throw new ProtocolError(path + " items must be one of [hood, cinematic, extra]");
                    break;
            }
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

    public sealed class Connection
    {
        readonly TcpClient client;
        readonly NetworkStream stream;
        readonly object sendLock = new object();
        public readonly string Peer;
        public volatile bool Subscribed;
        public volatile bool Closed;
        public int Errors;

        public Connection(TcpClient client)
        {
            this.client = client;
            stream = client.GetStream();
            Peer = client.Client.RemoteEndPoint.ToString();
        }

        public void Send(Dictionary<string, object> message)
        {
            byte[] payload = new UTF8Encoding(false).GetBytes(MiniJson.Write(message));
            if (payload.Length > Protocol.MaxMessageBytes) return;
            byte[] header = { (byte)(payload.Length >> 24), (byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length };
            lock (sendLock)
            {
                if (Closed) return;
                try { stream.Write(header, 0, 4); stream.Write(payload, 0, payload.Length); }
                catch (Exception) { Closed = true; }
            }
        }

        public void SendError(long id, string reason)
        {
            Send(new Dictionary<string, object> { { "type", "error" }, { "id", id }, { "reason", reason }, { "version", (long)Protocol.Version } });
        }

        /// <summary>Read one frame; null on a clean close. Throws ProtocolError for a bad length, IOException if truncated.</summary>
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

        public void SetReadTimeout(int ms) { stream.ReadTimeout = ms; }

        public void Close()
        {
            Closed = true;
            try { client.Close(); } catch (Exception) { }
        }
    }

    /// <summary>Loopback-only TCP server feeding validated requests into a queue.</summary>
    public sealed class BridgeServer
    {
        readonly string token;
        readonly int port;
        readonly TcpListener listener;
        readonly List<Connection> connections = new List<Connection>();
        public readonly ConcurrentQueue<Request> Requests = new ConcurrentQueue<Request>();
        public readonly ConcurrentQueue<string> Log = new ConcurrentQueue<string>();
        public int MaxClients = 4;
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
            listener.Start();
            var thread = new Thread(AcceptLoop) { IsBackground = true, Name = "gta5drive-accept" };
            thread.Start();
            Note("listening on 127.0.0.1:" + port);
        }

        public void Stop()
        {
            stopping = true;
            try { listener.Stop(); } catch (Exception) { }
            lock (connections) { foreach (var c in connections) c.Close(); connections.Clear(); }
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

        public void Push(Dictionary<string, object> telemetry)
        {
            var message = new Dictionary<string, object> { { "type", "telemetry" }, { "id", 0L }, { "telemetry", telemetry } };
            Connection[] targets;
            lock (connections) targets = connections.ToArray();
            foreach (var c in targets) if (c.Subscribed) c.Send(message);
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
                bool full;
                lock (connections) { full = connections.Count >= MaxClients; if (!full) connections.Add(conn); }
                if (full) { Reject(conn, 0, "too many clients (max " + MaxClients + ")"); conn.Close(); continue; }
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
                lock (connections) connections.Remove(conn);
                conn.Close();
            }
        }

        bool Handshake(Connection conn)
        {
            conn.SetReadTimeout(2000);
            Dictionary<string, object> hello;
            try
            {
                byte[] payload = conn.ReadFrame();
                if (payload == null) return false;
                long id;
                hello = Protocol.Decode(payload, out id);
                if ((string)hello["type"] != "hello") throw new ProtocolError("the first message must be 'hello'");
                Protocol.Validate(hello);
            }
            catch (ProtocolError e) { Reject(conn, 0, "bad hello: " + e.Message); return false; }
            catch (IOException e) { Reject(conn, 0, "no hello within the handshake timeout or " + e.Message); return false; }
            if ((long)hello["version"] != Protocol.Version)
            {
                Reject(conn, 0, "protocol version " + hello["version"] + " is not supported (server speaks " + Protocol.Version + ")");
                return false;
            }
            if (!ConstantTimeEquals((string)hello["token"], token)) { Reject(conn, 0, "wrong token"); return false; }
            conn.Send(new Dictionary<string, object> { { "type", "welcome" }, { "id", 0L }, { "version", (long)Protocol.Version }, { "server", "gta5drive-mod" } });
            conn.SetReadTimeout(System.Threading.Timeout.Infinite);
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
                    if ((string)message["type"] == "hello") throw new ProtocolError("'hello' is only valid as the first message");
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
                message.Remove("type");
                message.Remove("id");
                Requests.Enqueue(new Request { Conn = conn, Id = id, Type = type, Fields = message });
            }
        }

        static bool ConstantTimeEquals(string a, string b)
        {
            byte[] x = Encoding.UTF8.GetBytes(a), y = Encoding.UTF8.GetBytes(b);
            int diff = x.Length ^ y.Length;
            for (int i = 0; i < System.Math.Min(x.Length, y.Length); i++) diff |= x[i] ^ y[i];
            return diff == 0;
        }
    }
}
