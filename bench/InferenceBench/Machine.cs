using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;

namespace ChatServices.InferenceBench;

/// <summary>What the numbers were measured on, and the memory bandwidth that bounds single-stream decoding.</summary>
public sealed record Machine(int Cores, string Cpu, double MemoryGiB, double TriadGBps, double CopyGBps)
{
    public static Machine Describe()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown"
            : RuntimeInformation.ProcessArchitecture.ToString();
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (double)(1L << 30);
        var (triad, copy) = MeasureBandwidth();
        return new Machine(Environment.ProcessorCount, cpu, memory, triad, copy);
    }

    /// <summary>
    /// STREAM-style triad (a = b + s·c: two reads, one write) and copy over 3 × 128 MiB arrays — far beyond any
    /// cache — on every core, best of five runs, in GB/s (10^9 bytes).
    /// </summary>
    private static (double Triad, double Copy) MeasureBandwidth()
    {
        const int n = 16 << 20; // doubles per array: 128 MiB
        var a = new double[n];
        var b = new double[n];
        var c = new double[n];
        Array.Fill(b, 1.0);
        Array.Fill(c, 2.0);
        var parts = Environment.ProcessorCount;
        double bestTriad = 0, bestCopy = 0;
        for (var run = 0; run < 5; run++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, parts, p => Triad(a, b, c, 3.0, Range(p, parts, n)));
            bestTriad = Math.Max(bestTriad, 3.0 * 8 * n / sw.Elapsed.TotalSeconds / 1e9);
            sw.Restart();
            Parallel.For(0, parts, p => { var (s, l) = Range(p, parts, n); b.AsSpan(s, l).CopyTo(a.AsSpan(s, l)); });
            bestCopy = Math.Max(bestCopy, 2.0 * 8 * n / sw.Elapsed.TotalSeconds / 1e9);
        }
        GC.KeepAlive(a);
        return (bestTriad, bestCopy);
    }

    private static (int Start, int Length) Range(int part, int parts, int n)
    {
        var size = n / parts;
        var start = part * size;
        return (start, part == parts - 1 ? n - start : size);
    }

    private static void Triad(double[] a, double[] b, double[] c, double s, (int Start, int Length) range)
    {
        var (start, length) = range;
        var va = MemoryMarshal.Cast<double, Vector<double>>(a.AsSpan(start, length));
        var vb = MemoryMarshal.Cast<double, Vector<double>>(b.AsSpan(start, length));
        var vc = MemoryMarshal.Cast<double, Vector<double>>(c.AsSpan(start, length));
        var vs = new Vector<double>(s);
        for (var i = 0; i < va.Length; i++) va[i] = vb[i] + vs * vc[i];
        for (var i = start + va.Length * Vector<double>.Count; i < start + length; i++) a[i] = b[i] + s * c[i];
    }
}
