using TorchSharp.Modules;

namespace Pargs.Training;

/// <summary>
/// Checks an <c>optimizer.bin</c> against the layout this optimizer would write, before TorchSharp reads it.
/// TorchSharp's AdamW state file is: the optimizer's name, the number of parameter groups and of parameter states (LEB128), each group's
/// options (fixed-size numbers), then per parameter its step count (int64), <c>exp_avg</c> and <c>exp_avg_sq</c> as
/// tensors (LEB128 dtype, rank and dims, then the raw elements), a flag and, with amsgrad, <c>max_exp_avg_sq</c>.
/// TorchSharp allocates the rank-sized shape array it reads before comparing it with the parameter's, so a damaged
/// rank is a multi-gigabyte allocation; here every byte that is not a number the training wrote (options, steps,
/// moments) must equal the same byte of the optimizer's own state, and the file must have its length. Everything
/// checked is sized by this process's parameters, never by the file.
/// </summary>
static class OptimizerStateLayout
{
    public static void Check(string path, AdamW optimizer)
    {
        long length = new FileInfo(path).Length;
        byte[] own;
        string scratch = Path.Combine(Path.GetTempPath(), $"pargs-optimizer-layout-{Guid.NewGuid():N}.bin");
        try
        {
            optimizer.save_state_dict(scratch);
            own = File.ReadAllBytes(scratch);
        }
        finally { File.Delete(scratch); }
        if (length != own.Length)
            throw new PargsException($"{path}: the optimizer state does not fit the parameters being trained ({length} bytes where this optimizer's state takes {own.Length}); " +
                                     "the file is damaged, or was written with other settings (resume with the same model, --lora-rank and --lora-targets)");
        byte[] file = File.ReadAllBytes(path);

        var shapes = optimizer.parameters().Select(p => p.shape).ToList();
        // The optimizer's type name (a length-prefixed string, "AdamW"), then the group and state counts: byte-equal.
        int at = 1 + own[0];
        long groups = Leb(own, ref at), states = Leb(own, ref at);
        if (own[0] >= 0x80 || groups < 0 || states < 0) return; // a layout this check does not know: TorchSharp's own checks apply
        if (!own.AsSpan(0, at).SequenceEqual(file.AsSpan(0, at)))
            throw Damaged(path, "its optimizer type or its parameter-group or state count differs from this optimizer's");
        if (states != shapes.Count) return;

        // The states are the file's tail; their sizes follow from the parameter shapes, so where they start does too.
        long statesBytes = shapes.Sum(StateBytes);
        long start = own.Length - statesBytes;
        if (start < at) return;
        int pos = (int)start;
        for (int i = 0; i < shapes.Count; i++)
        {
            long step = BitConverter.ToInt64(file, pos);
            if (step < 0 || step > 1L << 40) throw Damaged(path, $"parameter {i}'s step count is {step}");
            pos += 8;
            for (int moment = 0; moment < 2; moment++) pos = SameTensorHeader(path, own, file, pos, shapes[i], i);
            if (own[pos] != file[pos]) throw Damaged(path, $"parameter {i}'s amsgrad flag differs from this optimizer's");
            bool amsgrad = own[pos] != 0;
            pos++;
            if (amsgrad) pos = SameTensorHeader(path, own, file, pos, shapes[i], i);
        }
    }

    /// <summary>Bytes of one parameter's state record: step, two moments, the amsgrad flag (off in Pargs's trainers).</summary>
    static long StateBytes(long[] shape) => 8 + 2 * TensorBytes(shape) + 1;

    static long TensorBytes(long[] shape) => HeaderBytes(shape) + shape.Aggregate(1L, (a, b) => a * b) * sizeof(float);

    /// <summary>A float32 tensor's header: LEB128 dtype (6), rank, then each dim.</summary>
    static int HeaderBytes(long[] shape) => (int)(LebSize(6) + LebSize(shape.Length) + shape.Sum(LebSize));

    /// <summary>The tensor header at <paramref name="pos"/> must be byte-equal to this optimizer's; returns the position after its elements.</summary>
    static int SameTensorHeader(string path, byte[] own, byte[] file, int pos, long[] shape, int parameter)
    {
        int header = HeaderBytes(shape);
        if (!own.AsSpan(pos, header).SequenceEqual(file.AsSpan(pos, header)))
            throw Damaged(path, $"parameter {parameter}'s moment tensor header (dtype, rank, shape) differs from this optimizer's [{string.Join(", ", shape)}]");
        return pos + (int)TensorBytes(shape);
    }

    static PargsException Damaged(string path, string what)
        => new($"{path}: {what}; the checkpoint is damaged — resume from an earlier one or start again");

    static long Leb(byte[] bytes, ref int at)
    {
        long value = 0;
        for (int shift = 0; shift < 63 && at < bytes.Length; shift += 7)
        {
            byte b = bytes[at++];
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        return -1;
    }

    static long LebSize(long value)
    {
        long size = 1;
        for (ulong v = (ulong)value; v >= 0x80; v >>= 7) size++;
        return size;
    }
}
