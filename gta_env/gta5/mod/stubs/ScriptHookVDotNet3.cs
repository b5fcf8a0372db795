// Compile-only stand-ins for the part of the ScriptHookVDotNet v3.6.0 public API that
// Gta5DriveMod.3.cs uses. Names, namespaces, types, parameters (with their defaults), static-ness
// and accessibility follow SHVDN's source (scripthookvdotnet/scripthookvdotnet, source/scripting_v3:
// GTA/Game.cs, GTA/World.cs, GTA/Script.cs, GTA/Entities/..., GTA.Native/Native.cs, GTA.UI/...);
// only members the mod uses and their enclosing types are declared, and every body throws. The
// Hash values are checked against SHVDN 3.6.0's enum by tests/gta5/test_gta5_mod.py. Never copy
// the resulting DLL into the game's scripts folder (SHVDN deletes assemblies named like itself).
using System;

namespace GTA.Math
{
    public struct Vector3 : IEquatable<Vector3>
    {
        public float X;
        public float Y;
        public float Z;
        public Vector3(float x, float y, float z) { X = x; Y = y; Z = z; }
        public static Vector3 Zero { get { throw new NotImplementedException(); } }
        public float DistanceTo2D(Vector3 position) { throw new NotImplementedException(); }
        public static Vector3 operator +(Vector3 left, Vector3 right) { throw new NotImplementedException(); }
        public static Vector3 operator -(Vector3 left, Vector3 right) { throw new NotImplementedException(); }
        public bool Equals(Vector3 other) { throw new NotImplementedException(); }
        public override bool Equals(object obj) { throw new NotImplementedException(); }
        public override int GetHashCode() { throw new NotImplementedException(); }
    }
}

namespace GTA.Native
{
    public interface INativeValue
    {
        ulong NativeValue { get; set; }
    }

    public enum Hash : ulong
    {
        CALCULATE_TRAVEL_DISTANCE_BETWEEN_POINTS = 0xADD95C7005C4A197,
        CLEAR_PED_TASKS = 0xE1EF3C1216AFF2CD,
        GET_CLOSEST_VEHICLE_NODE_WITH_HEADING = 0xFF071FB798B803B0,
        GET_ENTITY_SPEED_VECTOR = 0x9A8D700A51CB7B0D,
        HAS_COLLISION_LOADED_AROUND_ENTITY = 0xE9676F61BC0B3321,
        IS_POINT_ON_ROAD = 0x125BF4ABFC536B09,
        REQUEST_COLLISION_AT_COORD = 0x07503F7948F491A7,
        SET_CLOCK_TIME = 0x47C3B5848C3E45D8,
        SET_CONTROL_VALUE_NEXT_FRAME = 0xE8A25867FBA3B05E,
        SET_ENTITY_COORDS_NO_OFFSET = 0x239A3351AC1DA385,
        SET_ENTITY_HEADING = 0x8E2530AA8ADA980E,
        SET_PED_INTO_VEHICLE = 0xF75B0D629E1C063D,
        SET_VEHICLE_ON_GROUND_PROPERLY = 0x49733E92263139D1,
        SET_WEATHER_TYPE_NOW_PERSIST = 0xED712CA327900C8A,
        TASK_VEHICLE_DRIVE_TO_COORD_LONGRANGE = 0x158BB33F920D360C,
    }

    public sealed class InputArgument
    {
        public InputArgument(ulong value) { throw new NotImplementedException(); }
        public InputArgument(IntPtr value) { throw new NotImplementedException(); }
        public InputArgument(object value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(bool value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(int value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(uint value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(long value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(ulong value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(float value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(double value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(Enum value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(string value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(IntPtr value) { throw new NotImplementedException(); }
        public static implicit operator InputArgument(OutputArgument value) { throw new NotImplementedException(); }
    }

    public class OutputArgument : IDisposable
    {
        public OutputArgument() { throw new NotImplementedException(); }
        public OutputArgument(int size) { throw new NotImplementedException(); }
        public void Dispose() { throw new NotImplementedException(); }
        protected virtual void Dispose(bool disposing) { throw new NotImplementedException(); }
        public T GetResult<T>() { throw new NotImplementedException(); }
    }

    public static class Function
    {
        public static T Call<T>(Hash hash, params InputArgument[] arguments) { throw new NotImplementedException(); }
        public static void Call(Hash hash, params InputArgument[] arguments) { throw new NotImplementedException(); }
    }
}

namespace GTA.UI
{
    public static class Screen
    {
        public static bool IsFadedIn { get { throw new NotImplementedException(); } }
        public static bool IsFadedOut { get { throw new NotImplementedException(); } }
        public static void FadeIn(int time) { throw new NotImplementedException(); }
        public static void FadeOut(int time) { throw new NotImplementedException(); }
    }

    public static class Notification
    {
        public static int Show(string message, bool blinking = false) { throw new NotImplementedException(); }
    }
}

namespace GTA
{
    using GTA.Math;
    using GTA.Native;

    public abstract class Script
    {
        public Script() { throw new NotImplementedException(); }
        public event EventHandler Tick;
        public event EventHandler Aborted;
        public int Interval { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
    }

    public abstract class PoolObject : INativeValue
    {
        protected PoolObject(int handle) { throw new NotImplementedException(); }
        public int Handle { get { throw new NotImplementedException(); } protected set { throw new NotImplementedException(); } }
        public ulong NativeValue { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public abstract bool Exists();
        public abstract void Delete();
    }

    public abstract class Entity : PoolObject
    {
        internal Entity(int handle) : base(handle) { throw new NotImplementedException(); }
        public Vector3 Position { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public float Heading { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public Vector3 Velocity { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public bool HasCollided { get { throw new NotImplementedException(); } }
        public bool IsRecordingCollisions { set { throw new NotImplementedException(); } }
        public bool IsTouching(Entity entity) { throw new NotImplementedException(); }
        public override bool Exists() { throw new NotImplementedException(); }
        public override void Delete() { throw new NotImplementedException(); }
    }

    public sealed class Vehicle : Entity
    {
        internal Vehicle(int handle) : base(handle) { throw new NotImplementedException(); }
        public string DisplayName { get { throw new NotImplementedException(); } }
        public float BrakePower { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public float ThrottlePower { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public float SteeringAngle { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public void Repair() { throw new NotImplementedException(); }
    }

    public sealed class Ped : Entity
    {
        internal Ped(int handle) : base(handle) { throw new NotImplementedException(); }
        public Vehicle CurrentVehicle { get { throw new NotImplementedException(); } }
        public bool IsInVehicle() { throw new NotImplementedException(); }
    }

    public sealed class Player
    {
        internal Player(int handle) { throw new NotImplementedException(); }
        public Ped Character { get { throw new NotImplementedException(); } }
    }

    public struct Model : IEquatable<Model>, INativeValue
    {
        public Model(string name) { throw new NotImplementedException(); }
        public ulong NativeValue { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public bool IsValid { get { throw new NotImplementedException(); } }
        public bool Request(int timeout) { throw new NotImplementedException(); }
        public void MarkAsNoLongerNeeded() { throw new NotImplementedException(); }
        public bool Equals(Model model) { throw new NotImplementedException(); }
    }

    public enum BlipSprite
    {
        Standard = 1,
        Waypoint = 8,
    }

    public sealed class Blip : PoolObject
    {
        internal Blip(int handle) : base(handle) { throw new NotImplementedException(); }
        public BlipSprite Sprite { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public bool ShowRoute { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public override bool Exists() { throw new NotImplementedException(); }
        public override void Delete() { throw new NotImplementedException(); }
    }

    public enum MarkerType
    {
        UpsideDownCone = 0,
        VerticalCylinder = 1,
    }

    public sealed class Camera : PoolObject
    {
        internal Camera(int handle) : base(handle) { throw new NotImplementedException(); }
        public void AttachTo(Entity entity, Vector3 offset) { throw new NotImplementedException(); }
        public void PointAt(Entity target, Vector3 offset = default(Vector3)) { throw new NotImplementedException(); }
        public override bool Exists() { throw new NotImplementedException(); }
        public override void Delete() { throw new NotImplementedException(); }
    }

    public static class World
    {
        public static Camera RenderingCamera { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public static Vehicle CreateVehicle(Model model, Vector3 position, float heading = 0f) { throw new NotImplementedException(); }
        public static Vector3 GetNextPositionOnStreet(Vector3 position, bool unoccupied = false) { throw new NotImplementedException(); }
        public static Vehicle[] GetNearbyVehicles(Vector3 position, float radius, params Model[] models) { throw new NotImplementedException(); }
        public static Ped[] GetNearbyPeds(Vector3 position, float radius, params Model[] models) { throw new NotImplementedException(); }
        public static Blip CreateBlip(Vector3 position) { throw new NotImplementedException(); }
        public static Camera CreateCamera(Vector3 position, Vector3 rotation, float fov) { throw new NotImplementedException(); }
        public static void DrawMarker(MarkerType type, Vector3 pos, Vector3 dir, Vector3 rot, Vector3 scale, System.Drawing.Color color,
            bool bobUpAndDown = false, bool faceCamera = false, bool rotateY = false, string textueDict = null, string textureName = null, bool drawOnEntity = false)
        { throw new NotImplementedException(); }
    }

    public static class Game
    {
        public static float LastFrameTime { get { throw new NotImplementedException(); } }
        public static Player Player { get { throw new NotImplementedException(); } }
        public static bool IsPaused { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public static bool IsLoading { get { throw new NotImplementedException(); } }
        public static int GameTime { get { throw new NotImplementedException(); } }
        public static float TimeScale { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public static void Pause(bool value) { throw new NotImplementedException(); }
    }
}
