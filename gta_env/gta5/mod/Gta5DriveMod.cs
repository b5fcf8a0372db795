// gta5drive: the GTA V side of the bridge, a ScriptHookVDotNet v3 script.
//
// Every frame (Tick) it executes the queued bridge requests on the script thread, advances the
// pending ones (a step waiting for 1/30 s of game time, a camera waiting to be rendered, a
// teleport fading out and in), draws the purpose marker and pushes telemetry to subscribers.
// Build and install: see README.md next to this file. Protocol: docs/gta5.md.
using System;
using System.Collections.Generic;
using GTA;
using GTA.Math;
using GTA.Native;

namespace Gta5Drive
{
    public sealed class Gta5DriveMod : Script
    {
        const float FrameSeconds = 1f / 30f;
        const float MaxSteerDegrees = 40f;  // typical handling fSteeringLock; used to scale to [-1, 1]

        readonly BridgeServer server;
        readonly string startupError;
        long frame;
        bool lockstep;
        bool autopilot;
        Vector3? purpose;
        bool purposeMarker;
        Blip purposeBlip;
        string camera = "cinematic";
        string[] cycle = new string[0];
        Camera hoodCam, extraCam;
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
        Vector3 teleportTarget;
        float teleportHeading;

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
            if (startupError != null) { GTA.UI.Notification.Show(startupError); return; }
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
                Function.Call(Hash._SET_CONTROL_NORMAL, 0, 71, ctlThrottle);
                Function.Call(Hash._SET_CONTROL_NORMAL, 0, 72, ctlBrake);
                Function.Call(Hash._SET_CONTROL_NORMAL, 0, 59, ctlSteer);
            }
            AdvancePending();
            if (cycle.Length > 0) ShowCamera(cycle[(int)(frame % cycle.Length)]);
            if (purpose.HasValue && purposeMarker)
                World.DrawMarker(MarkerType.VerticalCylinder, purpose.Value, Vector3.Zero, Vector3.Zero,
                    new Vector3(3f, 3f, 30f), Color.FromArgb(160, 255, 200, 0));
            if (Car != null) server.Push(Telemetry());
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
                    Game.TimeScale = 1f;
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
                    if (pendingStep == null) Game.TimeScale = lockstep ? 0f : 1f;
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
                    if (lockstep) Game.TimeScale = 0f;
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
        }

        void Reset(Request r)
        {
            autopilot = false;
            Function.Call(Hash.CLEAR_PED_TASKS, Player);
            rng = new Random((int)L(r, "seed", 0));
            // Start somewhere on a street within ~1.5 km of downtown Los Santos, chosen by the seed.
            var centre = new Vector3(-200f, -800f, 30f);
            var spot = World.GetNextPositionOnStreet(centre + RandomOffset(0f, 1500f));
            var car = Car;
            if (car == null)
            {
                object name;
                var model = new Model(r.Fields.TryGetValue("vehicle", out name) ? (string)name : "blista");
                if (!model.IsValid || !model.Request(2000)) throw new InvalidOperationException("vehicle model could not be loaded");
                car = World.CreateVehicle(model, spot, 0f);
                model.MarkAsNoLongerNeeded();
                Function.Call(Hash.SET_PED_INTO_VEHICLE, Player, car, -1);
            }
            PlaceCar(car, spot, HeadingAt(spot));
            car.Repair();
            if (purposeBlip != null) { purposeBlip.Delete(); purposeBlip = null; }
            purpose = null;
            cycle = new string[0];
            frame = 0;
            lastSpeed = 0f;
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
            return found ? outHeading.GetResult<float>() : 0f;
        }

        static void PlaceCar(Vehicle car, Vector3 spot, float heading)
        {
            Function.Call(Hash.REQUEST_COLLISION_AT_COORD, spot.X, spot.Y, spot.Z);
            Function.Call(Hash.SET_ENTITY_COORDS_NO_OFFSET, car, spot.X, spot.Y, spot.Z, false, false, false);
            Function.Call(Hash.SET_ENTITY_HEADING, car, heading);
            Function.Call(Hash.SET_VEHICLE_ON_GROUND_PROPERLY, car);
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
            Vector3 best = car.Position;
            for (int attempt = 0; attempt < 12; attempt++)
            {
                double angle = local.NextDouble() * 2 * System.Math.PI;
                double dist = min + local.NextDouble() * (max - min);
                var guess = car.Position + new Vector3((float)(System.Math.Cos(angle) * dist), (float)(System.Math.Sin(angle) * dist), 0f);
                best = World.GetNextPositionOnStreet(guess);
                float d = best.DistanceTo2D(car.Position);
                if (d >= min && d <= max) break;
            }
            SetPurpose(best, B(r, "marker", false));
            Ok(r, new Dictionary<string, object> { { "purpose", new List<object> { (double)best.X, (double)best.Y } } });
        }

        void Autopilot(Request r)
        {
            var car = RequireCar();
            autopilot = B(r, "enabled", false);
            if (!autopilot)
            {
                Function.Call(Hash.CLEAR_PED_TASKS, Player);
                Ok(r);
                return;
            }
            Vector3 target;
            if (r.Fields.ContainsKey("x")) target = World.GetNextPositionOnStreet(new Vector3(F(r, "x", 0), F(r, "y", 0), car.Position.Z));
            else if (purpose.HasValue) target = purpose.Value;
            else throw new InvalidOperationException("no purpose point: send new_purpose or give x and y");
            Function.Call(Hash.TASK_VEHICLE_DRIVE_TO_COORD_LONGRANGE, Player, car, target.X, target.Y, target.Z,
                F(r, "speed", 20f), (int)L(r, "style", 786603), 10f);
            Ok(r);
        }

        void StartTeleport(Request r)
        {
            var car = RequireCar();
            if (pendingTeleport != null) throw new InvalidOperationException("a teleport is already in progress");
            if (r.Fields.ContainsKey("seed"))
            {
                var local = new Random((int)L(r, "seed", 0));
                double angle = local.NextDouble() * 2 * System.Math.PI;
                double dist = 200 + local.NextDouble() * 1800;
                var guess = car.Position + new Vector3((float)(System.Math.Cos(angle) * dist), (float)(System.Math.Sin(angle) * dist), 0f);
                teleportTarget = World.GetNextPositionOnStreet(guess);
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
                    teleportWaitUntilFrame = frame + 30;
                    teleportStage = 1;
                    return;
                case 1:
                    if (frame < teleportWaitUntilFrame || Game.IsLoading) return;
                    Function.Call(Hash.SET_VEHICLE_ON_GROUND_PROPERLY, car);
                    if (teleportFadeMs > 0) GTA.UI.Screen.FadeIn(teleportFadeMs);
                    teleportStage = 2;
                    return;
                default:
                    if (teleportFadeMs > 0 && !GTA.UI.Screen.IsFadedIn) return;
                    var r = pendingTeleport;
                    pendingTeleport = null;
                    var p = car.Position;
                    Ok(r, new Dictionary<string, object> { { "position", new List<object> { (double)p.X, (double)p.Y, (double)p.Z } } });
                    return;
            }
        }

        void ShowCamera(string name)
        {
            var car = Car;
            if (car == null) return;
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
            var local = Function.Call<Vector3>(Hash.GET_ENTITY_SPEED_VECTOR, car, true);
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
            float throttle = Clamp(car.Throttle, 0f, 1f);
            return new Dictionary<string, object>
            {
                { "frame", frame },
                { "game_time_ms", (long)Game.GameTime },
                { "position", new List<object> { (double)p.X, (double)p.Y, (double)p.Z } },
                { "heading_deg", (double)car.Heading },
                { "speed", (double)speed },
                { "on_road", Function.Call<bool>(Hash.IS_POINT_ON_ROAD, p.X, p.Y, p.Z, car) },
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
