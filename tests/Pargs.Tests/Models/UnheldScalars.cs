using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;

namespace Pargs.Tests.Models;

/// <summary>
/// Finds calls that make a TorchSharp Scalar nothing holds across the native call that reads it, by reading IL. WHY:
/// TorchSharp 0.107 frees a Scalar in its finalizer and passes only its handle to libtorch, so a temporary one (an
/// implicit conversion, or one TorchSharp makes inside <c>a + b</c>) can be freed by a collection on another thread while
/// libtorch reads it: a rare "Unknown scalar type" or a wrong value under load (SegmentSearchTests failed so in session 13).
/// A creator (Scalar's implicit conversions, ToScalar) whose result goes straight on the stack is a temporary; one
/// stored in a local is held only when the method disposes (a using). A TorchSharp member is hazardous when its own
/// IL makes such a temporary (a + b's alpha 1, t * 2.0, arange(n)'s start and step, square()'s exponent) or calls one
/// that does; a virtual call is hazardous when a type the scanned code constructs implements it hazardously. It reads
/// IL, not data flow: a Scalar local in a method that disposes anything counts as held, so it can miss a local that
/// has no using in such a method; it reports every temporary.
/// </summary>
public sealed class UnheldScalars
{
    static readonly Dictionary<short, OpCode> Codes = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);
    const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    readonly record struct Call(MethodBase Target, OpCode Code, OpCode Next);

    static (Module, int) Key(MethodBase m) => (m.Module, m.MetadataToken);

    static List<Call> CallsIn(MethodBase m)
    {
        var calls = new List<Call>();
        byte[]? il = m.GetMethodBody()?.GetILAsByteArray();
        if (il is null) return calls;
        Type[]? typeArgs = m.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        Type[]? methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
        MethodBase? previous = null;
        OpCode previousCode = OpCodes.Nop;
        for (int i = 0; i < il.Length;)
        {
            var op = Codes[il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i]];
            i += op.Size;
            if (previous is not null) { calls.Add(new Call(previous, previousCode, op)); previous = null; }
            if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj || op == OpCodes.Ldftn || op == OpCodes.Ldvirtftn)
            {
                previous = m.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                previousCode = op;
            }
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
        if (previous is not null) calls.Add(new Call(previous, previousCode, OpCodes.Nop));
        return calls;
    }

    static IEnumerable<MethodBase> Bodies(Assembly a) => a.GetTypes().SelectMany(t =>
        t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All)));

    static bool IsCreator(MethodBase m) =>
        (m.DeclaringType == typeof(Scalar) && m.Name == "op_Implicit") ||
        (m.DeclaringType == typeof(ScalarExtensionMethods) && m.Name == "ToScalar");

    static bool IsDispose(MethodBase m) => (m.DeclaringType == typeof(Scalar) || m.DeclaringType == typeof(IDisposable)) && m.Name == "Dispose";

    /// <summary>Why a body makes an unheld Scalar itself, or null.</summary>
    static string? OwnTemporary(List<Call> calls)
    {
        bool disposes = calls.Any(c => IsDispose(c.Target));
        foreach (var c in calls.Where(c => IsCreator(c.Target)))
        {
            string next = c.Next.Name!;
            if (next.StartsWith("stloc", StringComparison.Ordinal)) { if (!disposes) return $"a Scalar ({c.Target}) in a local never disposed"; }
            else if (c.Next != OpCodes.Stsfld && c.Next != OpCodes.Stfld) return $"a temporary Scalar ({c.Target})";
        }
        return null;
    }

    readonly Dictionary<(Module, int), string> hazardous = new();
    readonly Assembly torch = typeof(Scalar).Assembly;

    public UnheldScalars()
    {
        var calls = Bodies(torch).ToDictionary(b => b, CallsIn);
        foreach (var (body, cs) in calls)
            if (OwnTemporary(cs) is { } why) hazardous[Key(body)] = why;
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var (body, cs) in calls)
                if (!hazardous.ContainsKey(Key(body)) && cs.FirstOrDefault(c => !IsCreator(c.Target) && hazardous.ContainsKey(Key(c.Target))) is { Target: { } callee })
                {
                    hazardous[Key(body)] = $"calls {callee.DeclaringType!.Name}.{callee.Name}";
                    grew = true;
                }
        }
    }

    /// <summary>Each place in <paramref name="assembly"/> that makes an unheld Scalar, with why.</summary>
    public List<string> In(Assembly assembly) => In(assembly.GetTypes());

    /// <summary>Each place in <paramref name="types"/> (their own bodies, not nested types') that makes an unheld Scalar.</summary>
    public List<string> In(IEnumerable<Type> types)
    {
        var bodies = types.SelectMany(t => t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All))).ToDictionary(b => b, CallsIn);
        // Types whose virtual members the code may reach: those it constructs, and those TorchSharp factories hand it.
        var made = bodies.Values.SelectMany(cs => cs).Select(c => c.Target switch
        {
            ConstructorInfo ctor when c.Code == OpCodes.Newobj => ctor.DeclaringType,
            MethodInfo m when m.DeclaringType?.Assembly == torch => m.ReturnType,
            _ => null,
        }).OfType<Type>().Distinct().ToList();
        var found = new List<string>();
        foreach (var (body, cs) in bodies)
        {
            string where = $"{body.DeclaringType!.FullName}.{body.Name}";
            if (OwnTemporary(cs) is { } own) found.Add($"{where}: {own}");
            foreach (var c in cs.Where(c => c.Target.DeclaringType?.Assembly == torch && !IsCreator(c.Target)))
            {
                if (hazardous.TryGetValue(Key(c.Target), out var why)) found.Add($"{where}: {c.Target.DeclaringType!.Name}.{c.Target} ({why})");
                else if (c.Target is MethodInfo { IsVirtual: true } virtualTarget)
                    foreach (var type in made.Where(t => virtualTarget.DeclaringType!.IsAssignableFrom(t) || IsGenericSubclass(t, virtualTarget.DeclaringType!)))
                        if (Implementation(type, virtualTarget) is { } impl && impl.DeclaringType!.Assembly == torch && hazardous.TryGetValue(Key(impl), out var implWhy))
                            found.Add($"{where}: {c.Target.Name} on {type.Name} ({implWhy})");
            }
        }
        return found;
    }

    static bool IsGenericSubclass(Type t, Type generic)
    {
        if (!generic.IsGenericType) return false;
        var definition = generic.GetGenericTypeDefinition();
        for (var b = t; b is not null; b = b.BaseType) if (b.IsGenericType && b.GetGenericTypeDefinition() == definition) return true;
        return false;
    }

    static MethodInfo? Implementation(Type type, MethodInfo virtualMethod)
    {
        var baseDefinition = virtualMethod.GetBaseDefinition();
        for (var t = type; t is not null; t = t.BaseType)
            foreach (var m in t.GetMethods(All))
                if (m.Name == virtualMethod.Name && Key(m.GetBaseDefinition()) == Key(baseDefinition)) return m;
        return null;
    }
}
