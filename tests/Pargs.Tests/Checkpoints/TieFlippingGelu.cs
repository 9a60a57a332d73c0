using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// ggml's GELU table (<see cref="Models.Families.GemmaReferenceForward.Float16Gelu"/>'s float16 rounding and table
/// values) with the inputs at (layer, position, column) in <paramref name="flips"/> rounded to the float16 neighbour
/// across the nearest midpoint; records every input's relative distance to its nearest midpoint in
/// <paramref name="distances"/>. Layers are counted by calls: the reference forwards call their activation once per
/// layer, on [T, width].
/// </summary>
sealed class TieFlippingGelu(IReadOnlySet<(int, int, int)> flips, Dictionary<(int, int, int), double>? distances)
{
    int layer;

    public Tensor Apply(Tensor x)
    {
        var values = x.contiguous().data<float>().ToArray();
        int width = (int)x.shape[^1];
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (v <= -10f || v >= 10f) { values[i] = v <= -10f ? 0f : v; continue; }
            Half nearest = (Half)v;
            ushort bits = BitConverter.HalfToUInt16Bits(nearest);
            double up = (double)BitConverter.UInt16BitsToHalf((ushort)(bits + 1)), down = (double)BitConverter.UInt16BitsToHalf((ushort)(bits - 1));
            double midUp = ((double)nearest + up) / 2, midDown = ((double)nearest + down) / 2;
            bool towardUp = Math.Abs(v - midUp) < Math.Abs(v - midDown);
            var key = (layer, i / width, i % width);
            distances?.Add(key, Math.Min(Math.Abs(v - midUp), Math.Abs(v - midDown)) / Math.Abs(v));
            float input = flips.Contains(key) ? (float)BitConverter.UInt16BitsToHalf((ushort)(towardUp ? bits + 1 : bits - 1)) : (float)nearest;
            values[i] = GgmlGelu(input);
        }
        layer++;
        return tensor(values, x.shape);
    }

    /// <summary>ggml_gelu_f32 of a float16 input, stored as float16 (one entry of ggml's table).</summary>
    static float GgmlGelu(float v)
    {
        const float sqrt2OverPi = 0.79788456080286535587989211986876f, coefA = 0.044715f;
        return (float)(Half)(0.5f * v * (1.0f + MathF.Tanh(sqrt2OverPi * v * (1.0f + coefA * v * v))));
    }
}
