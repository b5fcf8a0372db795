// Compile-only stand-ins for the subset of the ScriptHookVDotNet v3 API that Gta5DriveMod.cs uses.
// Signatures follow ScriptHookVDotNet 3.x (namespaces GTA, GTA.Math, GTA.Native, GTA.UI); every
// body throws: this assembly exists so the mod's source can be type-checked without the game.
// Never copy the resulting DLL into the game's scripts folder.
using System;

namespace GTA.Math
{
    public struct Vector3
    {
        public float X, Y, Z;
        public Vector3(float x, float y, float z) { X = x; Y = y; Z = z; }
        public static Vector3 Zero { get { return new Vector3(0, 0, 0); } }
        public float Length() { throw new NotImplementedException(); }
        public float DistanceTo(Vector3 other) { throw new NotImplementedException(); }
        public float DistanceTo2D(Vector3 other) { throw new NotImplementedException(); }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return new Vector3(a.X + b.X, a.Y + b.Y, a.Z + b.Z); }
        public static Vector3 operator -(Vector3 a, Vector3 b) { return new Vector3(a.X - b.X, a.Y - b.Y, a.Z - b.Z); }
    }
}

namespace GTA.Native
{
    public enum Hash : ulong
    {
        IS_POINT_ON_ROAD = 0x125BF4ABFC536B09,
        CALCULATE_TRAVEL_DISTANCE_BETWEEN_POINTS = 0xADD95C7005C4A197,
        TASK_VEHICLE_DRIVE_TO_COORD_LONGRANGE = 0x158BB33F920D360C,
        CLEAR_PED_TASKS = 0xE1EF3C1216AFF2CD,
        SET_PED_INTO_VEHICLE = 0xF75B0D629E1C063D,
        GET_CLOSEST_VEHICLE_NODE_WITH_HEADING = 0xFF071FB798B803B0,
        SET_WEATHER_TYPE_NOW_PERSIST = 0xED712CA327900C8A,
        SET_CLOCK_TIME = 0x47C3B5848C3E45D8,
        SET_ENTITY_COORDS_NO_OFFSET = 0x239A3351AC1DA385,
        SET_ENTITY_HEADING = 0x8E2530AA8ADA980E,
        REQUEST_COLLISION_AT_COORD = 0x07503F7948F491A7,
        SET_VEHICLE_ON_GROUND_PROPERLY = 0x49733E92263139D1,
        GET_ENTITY_SPEED_VECTOR = 0x9A8D700A51CB7B0D,
        SET_TIME_SCALE = 0x1D408577D440E81E,
        RENDER_SCRIPT_CAMS = 0x07E5B515DB0636FC,
        _SET_CONTROL_NORMAL = 0xE8A25867FBA3B05E,
    }

    public class InputArgument
    {
        public static implicit operator InputArgument(int value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(float value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(bool value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(string value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(Entity value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(OutputArgument value) { throw new NotImplementedException(); }
    }

    public class OutputArgument
    {
        public OutputArgument() { }
        public T GetResult<T>() { throw new NotImplementedException(); }
    }

    public static class Function
    {
        public static void Call(Hash hash, params InputArgument[] arguments) { throw new NotImplementedException(); }
        public static T Call<T>(Hash hash, params InputArgument[] arguments) { throw new NotImplementedException(); }
    }
}

namespace GTA.UI
{
    public static class Screen
    {
        public static void FadeOut(int time) { throw new NotImplementedException(); }
        public static void FadeIn(int time) { throw new NotImplementedException(); }
        public static bool IsFadedOut { get { throw new NotImplementedException(); } }
        public static bool IsFadedIn { get { throw new NotImplementedException(); } }
        public static bool IsFadingOut { get { throw new NotImplementedException(); } }
        public static bool IsFadingIn { get { throw new NotImplementedException(); } }
    }

    public static class Notification
    {
        public static int Show(string message) { throw new NotImplementedException(); }
    }
}

namespace GTA
{
    using GTA.Math;

    public abstract class Script
    {
        protected Script() { }
        public event EventHandler Tick;
        public event EventHandler Aborted;
        public int Interval { get; set; }
        public static void Wait(int ms) { throw new NotImplementedException(); }
        // Silence "event never used" in the stub.
        protected void RaiseForStub() { Tick(this, EventArgs.Empty); Aborted(this, EventArgs.Empty); }
    }

    public struct Model
    {
        public Model(string name) { throw new NotImplementedException(); }
        public bool IsValid { get { throw new NotImplementedException(); } }
        public bool Request(int timeout) { throw new NotImplementedException(); }
        public void MarkAsNoLongerNeeded() { throw new NotImplementedException(); }
    }

    public abstract class Entity
    {
        public int Handle { get { throw new NotImplementedException(); } }
        public Vector3 Position { get; set; }
        public float Heading { get; set; }
        public Vector3 Velocity { get; set; }
        public bool Exists() { throw new NotImplementedException(); }
        public bool HasCollided { get { throw new NotImplementedException(); } }
        public bool IsTouching(Entity entity) { throw new NotImplementedException(); }
        public Vector3 GetOffsetPosition(Vector3 offset) { throw new NotImplementedException(); }
        public void Delete() { throw new NotImplementedException(); }
        public void MarkAsNoLongerNeeded() { throw new NotImplementedException(); }
        public Blip AddBlip() { throw new NotImplementedException(); }
    }

    public sealed class Vehicle : Entity
    {
        public float Speed { get; set; }
        public float Throttle { get { throw new NotImplementedException(); } }
        public float ThrottlePower { get; set; }
        public float BrakePower { get; set; }
        public float SteeringAngle { get; set; }
        public string DisplayName { get { throw new NotImplementedException(); } }
        public void Repair() { throw new NotImplementedException(); }
    }

    public sealed class Ped : Entity
    {
        public Vehicle CurrentVehicle { get { throw new NotImplementedException(); } }
        public bool IsInVehicle() { throw new NotImplementedException(); }
    }

    public sealed class Prop : Entity { }

    public sealed class Player
    {
        public Ped Character { get { throw new NotImplementedException(); } }
    }

    public sealed class Blip
    {
        public BlipSprite Sprite { get; set; }
        public bool ShowRoute { get; set; }
        public void Delete() { throw new NotImplementedException(); }
    }

    public enum BlipSprite { Standard = 1, Waypoint = 8 }

    public enum MarkerType { VerticalCylinder = 1 }

    public struct Color
    {
        public static Color FromArgb(int a, int r, int g, int b) { throw new NotImplementedException(); }
    }

    public sealed class Camera
    {
        public float FieldOfView { get; set; }
        public void AttachTo(Entity entity, Vector3 offset) { throw new NotImplementedException(); }
        public void PointAt(Entity target, Vector3 offset) { throw new NotImplementedException(); }
        public void Delete() { throw new NotImplementedException(); }
    }

    public static class World
    {
        public static Vehicle CreateVehicle(Model model, Vector3 position, float heading) { throw new NotImplementedException(); }
        public static Vector3 GetNextPositionOnStreet(Vector3 position) { throw new NotImplementedException(); }
        public static Vehicle[] GetNearbyVehicles(Vector3 position, float radius) { throw new NotImplementedException(); }
        public static Ped[] GetNearbyPeds(Vector3 position, float radius) { throw new NotImplementedException(); }
        public static Blip CreateBlip(Vector3 position) { throw new NotImplementedException(); }
        public static Camera CreateCamera(Vector3 position, Vector3 rotation, float fov) { throw new NotImplementedException(); }
        public static Camera RenderingCamera { get; set; }
        public static void DestroyAllCameras() { throw new NotImplementedException(); }
        public static void DrawMarker(MarkerType type, Vector3 pos, Vector3 dir, Vector3 rot, Vector3 scale, Color color) { throw new NotImplementedException(); }
    }

    public static class Game
    {
        public static Player Player { get { throw new NotImplementedException(); } }
        public static int GameTime { get { throw new NotImplementedException(); } }
        public static int FrameCount { get { throw new NotImplementedException(); } }
        public static float LastFrameTime { get { throw new NotImplementedException(); } }
        public static float TimeScale { get; set; }
        public static bool IsLoading { get { throw new NotImplementedException(); } }
    }
}
