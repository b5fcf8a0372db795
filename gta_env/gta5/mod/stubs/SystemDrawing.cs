// A compile-only stand-in for the one .NET Framework System.Drawing member the mod and the SHVDN
// stubs use (System.Drawing.Color.FromArgb), for machines whose mono has no System.Drawing.dll
// (Debian's mono-mcs alone). Where the real assembly exists the tests reference it instead.
namespace System.Drawing
{
    public struct Color
    {
        public static Color FromArgb(int alpha, int red, int green, int blue) { throw new NotImplementedException(); }
    }
}
