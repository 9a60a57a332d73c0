using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training.Optimizers;

/// <summary>
/// TorchSharp's AdamW with every Scalar of its step held across the native call that reads it. WHY: TorchSharp 0.107's
/// <c>AdamW.step</c> passes its coefficients as implicit Scalars (<c>mul_(β1)</c>, <c>add_(g, alpha: 1 − β1)</c>,
/// <c>addcmul_(…, value: 1 − β2)</c>, <c>/ √bc2</c>, <c>add_(ε)</c> and its hidden alpha, <c>addcdiv_(…, value: −lr/bc1)</c>)
/// that nothing references once their handles are read, so a collection on any thread during the update lets their
/// finalizers free what libtorch reads (<see cref="HeldScalars"/>): an "Unknown scalar type" error or a wrong update,
/// at random, under load. The arithmetic is TorchSharp's, operation for operation with the same Scalar values, so the
/// update is bit-identical (tested against <c>torch.optim.AdamW</c>), and the state (<see cref="TorchSharp.Modules.AdamW.State"/>, its
/// saved layout, <c>load_state_dict</c>) is the base class's. Named AdamW because TorchSharp writes the optimizer's
/// type name into optimizer.bin and refuses another on load: checkpoints stay readable by either class.
/// </summary>
public sealed class AdamW : TorchSharp.Modules.AdamW
{
    public AdamW(IEnumerable<TorchSharp.Modules.Parameter> parameters, double lr, double beta1, double beta2, double eps, double weightDecay)
        : base(parameters, lr, beta1, beta2, eps, weightDecay)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, weightDecay = options.weight_decay!.Value;
        double eps = options.eps!.Value, lr = options.LearningRate!.Value;
        bool amsgrad = options.amsgrad!.Value, maximize = options.maximize!.Value;
        foreach (var param in group.Parameters)
        {
            var state = (State)_state[param.Handle];
            var grad = param.grad;
            if (grad is null) continue;
            if (maximize) grad = -grad;
            state.step += 1;
            double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
            using Scalar decay = (1 - lr * weightDecay).ToScalar(), beta1Scalar = beta1.ToScalar(), oneMinusBeta1 = (1 - beta1).ToScalar(),
                beta2Scalar = beta2.ToScalar(), oneMinusBeta2 = (1 - beta2).ToScalar(), sqrtBias2 = Math.Sqrt(biasCorrection2).ToScalar(),
                epsScalar = eps.ToScalar(), one = 1.ToScalar(), negativeStep = (-(lr / biasCorrection1)).ToScalar();

            param.mul_(decay);
            state.exp_avg.mul_(beta1Scalar).add_(grad, oneMinusBeta1);
            state.exp_avg_sq.mul_(beta2Scalar).addcmul_(grad, grad, oneMinusBeta2);
            Tensor denom;
            if (amsgrad)
            {
                var previous = state.max_exp_avg_sq;
                state.max_exp_avg_sq = maximum(previous, state.exp_avg_sq).DetachFromDisposeScope();
                previous.Dispose();
                denom = state.max_exp_avg_sq.sqrt().div(sqrtBias2).add_(epsScalar, one);
            }
            else denom = state.exp_avg_sq.sqrt().div(sqrtBias2).add_(epsScalar, one);
            param.addcdiv_(state.exp_avg, denom, negativeStep);
        }
    }, closure);
}
