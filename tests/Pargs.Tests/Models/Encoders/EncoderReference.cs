using System.Text.Json.Nodes;

namespace Pargs.Tests.Models.Encoders;

/// <summary>
/// An independent reference for the encoder classifiers, written from the papers (BERT, RoBERTa, DistilBERT, DeBERTa
/// eq. 2–4) and the arithmetic of transformers' modeling code with plain loops over float arrays read straight from the
/// checkpoint — no TorchSharp module, no shared helper with the library. One unpadded sequence at a time, in double.
/// </summary>
internal sealed class EncoderReference(IReadOnlyDictionary<string, (float[] Data, long[] Shape)> w, JsonObject config)
{
    string Type => (string)config["model_type"]!;
    int Hidden => Type == "distilbert" ? (int)config["dim"]! : (int)config["hidden_size"]!;
    int Heads => Type == "distilbert" ? (int)config["n_heads"]! : (int)config["num_attention_heads"]!;
    int Layers => Type == "distilbert" ? (int)config["n_layers"]! : (int)config["num_hidden_layers"]!;
    double Eps => Type == "distilbert" ? 1e-12 : (double?)config["layer_norm_eps"] ?? (Type == "deberta-v2" ? 1e-7 : 1e-12);
    string Act => (string?)(Type == "distilbert" ? config["activation"] : config["hidden_act"]) ?? "gelu";

    float[] W(string name) => w[name].Data;
    bool Has(string name) => w.ContainsKey(name);

    /// <summary>The classifier's logits for one sequence of ids (and token types).</summary>
    public double[] Logits(int[] ids, int[] types) => Type switch
    {
        "bert" => Bert(ids, types),
        "roberta" => Roberta(ids),
        "distilbert" => DistilBert(ids),
        "deberta-v2" => Deberta(ids, types),
        _ => throw new InvalidOperationException(Type),
    };

    // ---- building blocks ----
    double[] Row(string table, int row, int width) => Enumerable.Range(0, width).Select(i => (double)W(table)[row * width + i]).ToArray();

    double[] Linear(string prefix, double[] x, bool bias = true)
    {
        var (weight, shape) = w[prefix + ".weight"];
        int outDim = (int)shape[0], inDim = (int)shape[1];
        var y = new double[outDim];
        for (int o = 0; o < outDim; o++)
        {
            double s = bias ? W(prefix + ".bias")[o] : 0;
            for (int i = 0; i < inDim; i++) s += weight[o * inDim + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    double[] LayerNorm(string prefix, double[] x)
    {
        double mean = x.Average();
        double variance = x.Select(v => (v - mean) * (v - mean)).Average();
        return x.Select((v, i) => (v - mean) / Math.Sqrt(variance + Eps) * W(prefix + ".weight")[i] + W(prefix + ".bias")[i]).ToArray();
    }

    static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();

    /// <summary>erf by Abramowitz &amp; Stegun 7.1.26 (|error| ≤ 1.5e-7).</summary>
    static double Erf(double x)
    {
        double t = 1 / (1 + 0.3275911 * Math.Abs(x));
        double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return x >= 0 ? y : -y;
    }

    static double Activate(string name, double x) => name switch
    {
        "gelu" => 0.5 * x * (1 + Erf(x / Math.Sqrt(2))),
        "gelu_new" or "gelu_pytorch_tanh" => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
        "relu" => Math.Max(0, x),
        "tanh" => Math.Tanh(x),
        _ => throw new InvalidOperationException(name),
    };

    static double Dot(double[] a, int aOffset, double[] b, int bOffset, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) s += a[aOffset + i] * b[bOffset + i];
        return s;
    }

    /// <summary>softmax over j of score(i, j), then Σ_j p_ij v_j, for every head.</summary>
    double[][] Attend(double[][] q, double[][] k, double[][] v, Func<int, int, int, double> extraScore, double scale)
    {
        int t = q.Length, d = Hidden / Heads;
        var output = Enumerable.Range(0, t).Select(_ => new double[Hidden]).ToArray();
        for (int h = 0; h < Heads; h++)
            for (int i = 0; i < t; i++)
            {
                var s = new double[t];
                for (int j = 0; j < t; j++) s[j] = Dot(q[i], h * d, k[j], h * d, d) / scale + extraScore(h, i, j);
                double max = s.Max();
                var e = s.Select(x => Math.Exp(x - max)).ToArray();
                double sum = e.Sum();
                for (int j = 0; j < t; j++)
                    for (int c = 0; c < d; c++) output[i][h * d + c] += e[j] / sum * v[j][h * d + c];
            }
        return output;
    }

    // ---- BERT / RoBERTa (post-LN, Devlin et al. 2019) ----
    double[][] BertEncoder(string model, int[] ids, int[] types, int[] positions)
    {
        var x = ids.Select((id, t) =>
        {
            var e = Add(Row($"{model}.embeddings.word_embeddings.weight", id, Hidden), Row($"{model}.embeddings.position_embeddings.weight", positions[t], Hidden));
            if (Has($"{model}.embeddings.token_type_embeddings.weight")) e = Add(e, Row($"{model}.embeddings.token_type_embeddings.weight", types[t], Hidden));
            return LayerNorm($"{model}.embeddings.LayerNorm", e);
        }).ToArray();
        for (int l = 0; l < Layers; l++)
        {
            string p = $"{model}.encoder.layer.{l}";
            var q = x.Select(h => Linear($"{p}.attention.self.query", h)).ToArray();
            var k = x.Select(h => Linear($"{p}.attention.self.key", h)).ToArray();
            var v = x.Select(h => Linear($"{p}.attention.self.value", h)).ToArray();
            var context = Attend(q, k, v, (_, _, _) => 0, Math.Sqrt(Hidden / Heads));
            x = x.Select((h, t) =>
            {
                var a = LayerNorm($"{p}.attention.output.LayerNorm", Add(h, Linear($"{p}.attention.output.dense", context[t])));
                var f = Linear($"{p}.output.dense", Linear($"{p}.intermediate.dense", a).Select(z => Activate(Act, z)).ToArray());
                return LayerNorm($"{p}.output.LayerNorm", Add(a, f));
            }).ToArray();
        }
        return x;
    }

    double[] Bert(int[] ids, int[] types)
    {
        var x = BertEncoder("bert", ids, types, Enumerable.Range(0, ids.Length).ToArray());
        var pooled = Linear("bert.pooler.dense", x[0]).Select(Math.Tanh).ToArray();
        return Linear("classifier", pooled);
    }

    double[] Roberta(int[] ids)
    {
        int pad = (int?)config["pad_token_id"] ?? 1;
        // Real tokens are numbered from padding_idx + 1 (no pad inside a real sequence).
        var x = BertEncoder("roberta", ids, new int[ids.Length], Enumerable.Range(0, ids.Length).Select(t => pad + 1 + t).ToArray());
        return Linear("classifier.out_proj", Linear("classifier.dense", x[0]).Select(Math.Tanh).ToArray());
    }

    // ---- DistilBERT (Sanh et al. 2019): BERT's layer without token types or pooler ----
    double[] DistilBert(int[] ids)
    {
        var x = ids.Select((id, t) => LayerNorm("distilbert.embeddings.LayerNorm",
            Add(Row("distilbert.embeddings.word_embeddings.weight", id, Hidden), Row("distilbert.embeddings.position_embeddings.weight", t, Hidden)))).ToArray();
        for (int l = 0; l < Layers; l++)
        {
            string p = $"distilbert.transformer.layer.{l}";
            var q = x.Select(h => Linear($"{p}.attention.q_lin", h)).ToArray();
            var k = x.Select(h => Linear($"{p}.attention.k_lin", h)).ToArray();
            var v = x.Select(h => Linear($"{p}.attention.v_lin", h)).ToArray();
            var context = Attend(q, k, v, (_, _, _) => 0, Math.Sqrt(Hidden / Heads));
            x = x.Select((h, t) =>
            {
                var a = LayerNorm($"{p}.sa_layer_norm", Add(h, Linear($"{p}.attention.out_lin", context[t])));
                var f = Linear($"{p}.ffn.lin2", Linear($"{p}.ffn.lin1", a).Select(z => Activate(Act, z)).ToArray());
                return LayerNorm($"{p}.output_layer_norm", Add(a, f));
            }).ToArray();
        }
        return Linear("classifier", Linear("pre_classifier", x[0]).Select(z => Math.Max(0, z)).ToArray());
    }

    // ---- DeBERTa-v2/v3 (He et al. 2021): disentangled attention over relative positions ----

    /// <summary>The log-bucket of a relative distance (make_log_bucket_position), in float32 as torch computes it.</summary>
    static long Bucket(long r, int buckets, int maxPosition)
    {
        int mid = buckets / 2;
        if (Math.Abs(r) <= mid) return r; // inside ±mid the distance is exact
        float scaled = MathF.Log((float)Math.Abs(r) / mid) / MathF.Log((float)((maxPosition - 1) / (double)mid)) * (mid - 1);
        return Math.Sign(r) * (long)(MathF.Ceiling(scaled) + mid);
    }

    double[] Deberta(int[] ids, int[] types)
    {
        bool relative = (bool?)config["relative_attention"] ?? false;
        int maxPositions = (int)config["max_position_embeddings"]!;
        int maxRelative = (int?)config["max_relative_positions"] ?? -1;
        if (maxRelative < 1) maxRelative = maxPositions;
        int buckets = (int?)config["position_buckets"] ?? -1;
        int span = buckets > 0 ? buckets : maxRelative;
        var posAtt = config["pos_att_type"] is JsonArray list ? list.Select(n => (string)n!).ToArray()
            : ((string?)config["pos_att_type"] ?? "").Split('|', StringSplitOptions.RemoveEmptyEntries);
        bool c2p = posAtt.Contains("c2p"), p2c = posAtt.Contains("p2c");
        bool share = (bool?)config["share_att_key"] ?? false;
        bool normRel = ((string?)config["norm_rel_ebd"] ?? "none").Contains("layer_norm");
        int embeddingSize = (int?)config["embedding_size"] ?? Hidden;
        int d = Hidden / Heads;

        var x = ids.Select((id, t) =>
        {
            var e = Row("deberta.embeddings.word_embeddings.weight", id, embeddingSize);
            if ((bool?)config["position_biased_input"] ?? true) e = Add(e, Row("deberta.embeddings.position_embeddings.weight", t, embeddingSize));
            if (Has("deberta.embeddings.token_type_embeddings.weight")) e = Add(e, Row("deberta.embeddings.token_type_embeddings.weight", types[t], embeddingSize));
            if (embeddingSize != Hidden) e = Linear("deberta.embeddings.embed_proj", e, bias: false);
            return LayerNorm("deberta.embeddings.LayerNorm", e);
        }).ToArray();

        double[][] rel = [];
        if (relative)
        {
            rel = Enumerable.Range(0, 2 * span).Select(r => Row("deberta.encoder.rel_embeddings.weight", r, Hidden)).ToArray();
            if (normRel) rel = rel.Select(r => LayerNorm("deberta.encoder.LayerNorm", r)).ToArray();
        }
        long Delta(int i, int j) => buckets > 0 ? Bucket(i - j, buckets, maxRelative) : i - j;
        int Clamp(long v) => (int)Math.Clamp(v, 0, 2 * span - 1);
        double scale = Math.Sqrt(d * (1 + (c2p ? 1 : 0) + (p2c ? 1 : 0)));

        for (int l = 0; l < Layers; l++)
        {
            string p = $"deberta.encoder.layer.{l}";
            var q = x.Select(h => Linear($"{p}.attention.self.query_proj", h)).ToArray();
            var k = x.Select(h => Linear($"{p}.attention.self.key_proj", h)).ToArray();
            var v = x.Select(h => Linear($"{p}.attention.self.value_proj", h)).ToArray();
            // Relative keys K^r and queries Q^r: the content projections when share_att_key, else their own.
            var kr = relative && c2p ? rel.Select(r => Linear(share ? $"{p}.attention.self.key_proj" : $"{p}.attention.self.pos_key_proj", r)).ToArray() : [];
            var qr = relative && p2c ? rel.Select(r => Linear(share ? $"{p}.attention.self.query_proj" : $"{p}.attention.self.pos_query_proj", r)).ToArray() : [];
            double Extra(int h, int i, int j)
            {
                if (!relative) return 0;
                double s = 0;
                if (c2p) s += Dot(q[i], h * d, kr[Clamp(Delta(i, j) + span)], h * d, d);  // content of i → position of j relative to i
                if (p2c) s += Dot(k[j], h * d, qr[Clamp(-Delta(j, i) + span)], h * d, d); // content of j ← position (gathered as transformers does)
                return s / scale;
            }
            var context = Attend(q, k, v, Extra, scale);
            x = x.Select((h, t) =>
            {
                var a = LayerNorm($"{p}.attention.output.LayerNorm", Add(h, Linear($"{p}.attention.output.dense", context[t])));
                var f = Linear($"{p}.output.dense", Linear($"{p}.intermediate.dense", a).Select(z => Activate(Act, z)).ToArray());
                return LayerNorm($"{p}.output.LayerNorm", Add(a, f));
            }).ToArray();
        }
        string poolerAct = (string?)config["pooler_hidden_act"] ?? "gelu";
        var pooled = Linear("pooler.dense", x[0]).Select(z => Activate(poolerAct, z)).ToArray();
        return Linear("classifier", pooled);
    }
}
