using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// Copies checkpoint tensors into a module by Hugging Face name, strictly: a missing tensor, a wrong shape
/// or an unexpected tensor is an error naming the file and the tensor, because a silently half-loaded model
/// (for instance a reward model that lost its score head) produces plausible garbage.
/// </summary>
public static class StateDict
{
    /// <summary>Tensors that checkpoints carry but that are not parameters (recomputed buffers).</summary>
    static bool IsKnownBuffer(string name)
        => name.EndsWith("rotary_emb.inv_freq") || name.EndsWith(".attn.bias") || name.EndsWith(".attn.masked_bias");

    /// <param name="module">The module to fill.</param>
    /// <param name="tensors">Checkpoint tensors by HF name.</param>
    /// <param name="source">File or folder, for messages.</param>
    /// <param name="mayBeMissing">Parameters allowed to keep their initial values (e.g. a new score head).</param>
    /// <param name="mayBeUnused">Checkpoint tensors this module does not need (e.g. lm_head when building a reward model).</param>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source,
        Func<string, bool>? mayBeMissing = null, Func<string, bool>? mayBeUnused = null)
    {
        var used = new HashSet<string>();
        using (no_grad())
        using (NewDisposeScope()) // each dtype conversion is a temporary read by copy_ (TransformerBackbone.ForwardInScope says why)
        {
            foreach (var (name, parameter) in module.named_parameters())
            {
                if (!tensors.TryGetValue(name, out var value))
                {
                    if (mayBeMissing?.Invoke(name) == true) continue;
                    throw new PargsException($"{source}: tensor \"{name}\" is missing (expected shape [{string.Join(", ", parameter.shape)}])");
                }
                if (!value.shape.SequenceEqual(parameter.shape))
                    throw new PargsException($"{source}: tensor \"{name}\" has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", parameter.shape)}]");
                parameter.copy_(value.to(parameter.dtype));
                used.Add(name);
            }
        }
        var unexpected = tensors.Keys.Where(k => !used.Contains(k) && !IsKnownBuffer(k) && mayBeUnused?.Invoke(k) != true).ToList();
        if (unexpected.Count > 0)
            throw new PargsException($"{source}: unexpected tensor(s) {string.Join(", ", unexpected.Take(5).Select(n => $"\"{n}\""))}{(unexpected.Count > 5 ? $" and {unexpected.Count - 5} more" : "")} — the config.json does not describe this checkpoint");
    }

    /// <summary>
    /// The module's parameters by HF name, detached contiguous (row-major) copies for saving: weights may be
    /// stored column-major (<see cref="ColumnMajor"/>), and writers copy raw memory.
    /// </summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module)
    {
        using var scope = NewDisposeScope(); // the detached views are temporaries; the copies leave (TransformerBackbone.ForwardInScope says why)
        var copies = module.named_parameters().ToDictionary(p => p.name, p => ContiguousCopy(p.parameter.detach()));
        scope.MoveToOuter(copies.Values);
        return copies;
    }

    static Tensor ContiguousCopy(Tensor t) => t.is_contiguous() ? t.clone() : t.contiguous();

    /// <summary>
    /// Hands <paramref name="snapshot"/> (a <see cref="Snapshot"/>: a copy of every parameter) to <paramref name="use"/> and frees
    /// the copies as soon as it returns or throws. WHY: they are native memory the GC does not see — a whole model's worth
    /// per save, left to the finalizer, piled up over a training run's checkpoints.
    /// </summary>
    public static void Use(Dictionary<string, Tensor> snapshot, Action<Dictionary<string, Tensor>> use)
    {
        try { use(snapshot); }
        finally
        {
            foreach (var t in snapshot.Values) t.Dispose();
        }
    }
}
