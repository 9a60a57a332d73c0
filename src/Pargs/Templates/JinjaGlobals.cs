using System.Globalization;
using System.Text;

namespace Pargs.Templates;

/// <summary>
/// The global functions a chat template can call: Jinja's <c>range</c>, <c>namespace</c>, <c>dict</c>, and the two
/// transformers adds, <c>raise_exception(message)</c> and <c>strftime_now(format)</c> (its clock is injectable, so
/// tests render a fixed date).
/// </summary>
static class JinjaGlobals
{
    public static void AddTo(JinjaScope scope, Func<DateTime> now)
    {
        scope.Set("range", new JinjaFunction("range", Range));
        scope.Set("namespace", new JinjaFunction("namespace", Namespace));
        scope.Set("dict", new JinjaFunction("dict", (_, args) =>
        {
            if (args.Positional.Count > 0) throw new JinjaRuntimeException("dict() takes keyword arguments only", args.Line);
            var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in args.Named) dict[key] = value;
            return dict;
        }));
        scope.Set("raise_exception", new JinjaFunction("raise_exception", (_, args) =>
            throw new JinjaRuntimeException("the template raised an error: " + JinjaValues.ToText(args.Get(0, "message", "")), args.Line)));
        scope.Set("strftime_now", new JinjaFunction("strftime_now", (_, args) =>
        {
            args.Check("strftime_now", 1);
            var format = args.Get(0, "", null) as string ?? throw new JinjaRuntimeException("strftime_now needs a format string", args.Line);
            return Strftime(now(), format, args.Line);
        }));
    }

    static object? Range(JinjaInterpreter interpreter, JinjaArguments args)
    {
        args.Check("range", 3);
        var numbers = args.Positional.Select(p => p is long or bool ? JinjaValues.ToLong(p)
            : throw new JinjaRuntimeException($"range() needs integers, got {JinjaValues.TypeName(p)}", args.Line)).ToList();
        long start = 0, stop, step = 1;
        switch (numbers.Count)
        {
            case 1: stop = numbers[0]; break;
            case 2: start = numbers[0]; stop = numbers[1]; break;
            case 3: start = numbers[0]; stop = numbers[1]; step = numbers[2]; break;
            default: throw new JinjaRuntimeException("range() needs 1 to 3 arguments", args.Line);
        }
        if (step == 0) throw new JinjaRuntimeException("range() step must not be zero", args.Line);
        long count;
        try { count = checked(step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step)); }
        catch (OverflowException) { throw new JinjaRuntimeException("range() bounds overflow", args.Line); }
        interpreter.CountIterations(count, args.Line);
        var result = new List<object?>((int)count);
        for (long i = 0; i < count; i++) result.Add(start + i * step);
        return result;
    }

    static object? Namespace(JinjaInterpreter interpreter, JinjaArguments args)
    {
        var ns = new JinjaNamespace();
        foreach (var initial in args.Positional)
        {
            if (initial is not Dictionary<string, object?> dict) throw new JinjaRuntimeException("namespace() takes a dict or keyword arguments", args.Line);
            foreach (var (key, value) in dict)
                ns.Attributes[JinjaDictKeys.Decode(key) as string ?? throw new JinjaRuntimeException("namespace() attribute names must be strings", args.Line)] = value;
        }
        foreach (var (key, value) in args.Named) ns.Attributes[key] = value;
        return ns;
    }

    static readonly string[] MonthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    static readonly string[] DayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

    /// <summary>Python's <c>datetime.strftime</c> in the C locale, for the directives templates use.</summary>
    internal static string Strftime(DateTime time, string format, int line)
    {
        var text = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { text.Append(format[i]); continue; }
            char directive = format[++i];
            bool noPad = false;
            if (directive == '-' && i + 1 < format.Length) { noPad = true; directive = format[++i]; }
            string Number(int value, int width) => noPad ? value.ToString(CultureInfo.InvariantCulture) : value.ToString(new string('0', width), CultureInfo.InvariantCulture);
            text.Append(directive switch
            {
                'Y' => time.Year.ToString(CultureInfo.InvariantCulture),
                'y' => Number(time.Year % 100, 2),
                'm' => Number(time.Month, 2),
                'd' => Number(time.Day, 2),
                'e' => time.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
                'H' => Number(time.Hour, 2),
                'I' => Number(time.Hour % 12 == 0 ? 12 : time.Hour % 12, 2),
                'M' => Number(time.Minute, 2),
                'S' => Number(time.Second, 2),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => Number(time.DayOfYear, 3),
                'B' => MonthNames[time.Month - 1],
                'b' or 'h' => MonthNames[time.Month - 1][..3],
                'A' => DayNames[(int)time.DayOfWeek],
                'a' => DayNames[(int)time.DayOfWeek][..3],
                '%' => "%",
                _ => throw new JinjaRuntimeException($"strftime_now: unsupported directive '%{directive}'", line),
            });
        }
        return text.ToString();
    }
}
