// A console host for Bridge.cs and MiniJson.cs without the game: answers requests with canned
// telemetry so the Python client can be tested against the C# server (tests/gta5). Not part of
// the mod. Usage: mono BridgeSelfTest.exe PORT TOKEN
using System;
using System.Collections.Generic;
using System.Threading;

namespace Gta5Drive
{
    public static class BridgeSelfTest
    {
        public static int Main(string[] args)
        {
            var server = new BridgeServer(int.Parse(args[0]), args[1]);
            server.Start();
            Console.WriteLine("ready");
            Console.Out.Flush();
            long frame = 0;
            while (true)
            {
                Request r;
                while (server.Requests.TryDequeue(out r))
                {
                    var reply = new Dictionary<string, object> { { "type", "ok" }, { "id", r.Id } };
                    if (r.Type == "step") frame += r.Fields.ContainsKey("frames") ? (long)r.Fields["frames"] : 1;
                    if (r.Type == "telemetry" || r.Type == "step" || r.Type == "reset")
                        reply["telemetry"] = Telemetry(frame);
                    else if (r.Type == "set_camera") { reply["camera"] = r.Fields["camera"]; reply["frame"] = frame; }
                    else if (r.Type == "subscribe") r.Conn.Subscribed = (bool)r.Fields["enabled"];
                    else if (r.Type == "weather") { server.Reject(r.Conn, r.Id, "weather: not in the self test"); continue; }
                    r.Conn.Send(reply);
                    if (r.Type == "step") server.Push(Telemetry(frame));
                }
                string line;
                while (server.Log.TryDequeue(out line)) { Console.WriteLine(line); Console.Out.Flush(); }
                Thread.Sleep(1);
            }
        }

        static Dictionary<string, object> Telemetry(long frame)
        {
            return new Dictionary<string, object>
            {
                { "frame", frame }, { "position", new List<object> { 1.5, -2.0, 30.0 } },
                { "heading_deg", 90.0 }, { "speed", 3.25 }, { "on_road", true },
                { "purpose", null }, { "route_remaining", -1.0 }, { "collisions", new List<object>() },
                { "camera", "hood" },
                { "npc", new Dictionary<string, object> { { "active", false }, { "throttle", 0.0 }, { "brake", 0.0 }, { "steer", 0.0 } } },
            };
        }
    }
}
