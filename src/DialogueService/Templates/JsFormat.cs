using System.Globalization;
using System.Text;

namespace ChatServices.DialogueService.Templates;

internal sealed record JsonOptions(int? Indent = null, bool EnsureAscii = false, (string Item, string Key)? Separators = null, bool SortKeys = false)
{
    public static readonly JsonOptions Default = new();
}

/// <summary>
/// The JavaScript formatting rules the reference renderer inherits: Number.prototype.toString,
/// JSON.stringify, and String.prototype trimming and case mapping. Chat prompts must match it byte for
/// byte, so these follow the ECMAScript algorithms rather than .NET's own formatting.
/// </summary>
internal static class JsFormat
{
    /// <summary>ECMAScript Number::toString(10): shortest round-trip digits, exponent outside [1e-7, 1e21).</summary>
    public static string NumberToString(double x)
    {
        if (double.IsNaN(x)) return "NaN";
        if (x == 0) return "0";
        if (double.IsInfinity(x)) return x > 0 ? "Infinity" : "-Infinity";
        if (x < 0) return "-" + NumberToString(-x);

        // "R" is the shortest string that round-trips, in the form d.dddE±n or plain decimal.
        var r = x.ToString("R", CultureInfo.InvariantCulture);
        var exponent = 0;
        var e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }
        var dot = r.IndexOf('.');
        var intDigits = dot < 0 ? r.Length : dot;
        var digits = dot < 0 ? r : r.Remove(dot, 1);
        var leading = 0;
        while (leading < digits.Length - 1 && digits[leading] == '0') leading++;
        digits = digits[leading..].TrimEnd('0');
        if (digits.Length == 0) return "0";
        var n = intDigits + exponent - leading;
        var k = digits.Length;

        if (k <= n && n <= 21) return digits + new string('0', n - k);
        if (0 < n && n <= 21) return digits[..n] + "." + digits[n..];
        if (-6 < n && n <= 0) return "0." + new string('0', -n) + digits;
        var exp = n - 1;
        var sign = exp < 0 ? "-" : "+";
        var mantissa = k == 1 ? digits : digits[..1] + "." + digits[1..];
        return mantissa + "e" + sign + Math.Abs(exp).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The reference prints floats Python-style: whole numbers keep one decimal ("2.0", "-0.0").</summary>
    public static string FloatToString(double x)
    {
        if (x == 0 && double.IsNegative(x)) return "-0.0";
        if (double.IsFinite(x) && x == Math.Floor(x))
            return Math.Abs(x) >= 1e21 ? NumberToString(x) : x.ToString("F0", CultureInfo.InvariantCulture) + ".0";
        return NumberToString(x);
    }

    /// <summary>JSON.stringify for a string: escapes quotes, backslashes, control characters and lone surrogates.</summary>
    public static void AppendJsonString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) AppendUnicodeEscape(sb, c);
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                    {
                        if (ensureAscii)
                        {
                            AppendUnicodeEscape(sb, c);
                            AppendUnicodeEscape(sb, s[i + 1]);
                        }
                        else
                        {
                            sb.Append(c).Append(s[i + 1]);
                        }
                        i++;
                    }
                    else if (char.IsSurrogate(c) || (ensureAscii && c >= 0x7f)) AppendUnicodeEscape(sb, c);
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    private static void AppendUnicodeEscape(StringBuilder sb, char c) =>
        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));

    public static string ToJson(Value input, JsonOptions options, int depth, bool convertUndefinedToNull)
    {
        var sb = new StringBuilder();
        AppendJson(sb, input, options, depth, convertUndefinedToNull);
        return sb.ToString();
    }

    /// <summary>The reference's toJSON: Python json.dumps separators, tuples and functions rejected.</summary>
    public static void AppendJson(StringBuilder sb, Value input, JsonOptions options, int depth, bool convertUndefinedToNull)
    {
        string itemSeparator, keySeparator;
        if (options.Separators is { } separators) (itemSeparator, keySeparator) = separators;
        else if (options.Indent is > 0) (itemSeparator, keySeparator) = (",", ": ");
        else (itemSeparator, keySeparator) = (", ", ": ");

        switch (input)
        {
            case NullValue:
                sb.Append("null");
                return;
            case UndefinedValue:
                sb.Append(convertUndefinedToNull ? "null" : "undefined");
                return;
            case NumberValue number:
                sb.Append(double.IsFinite(number.Number) ? NumberToString(number.Number) : "null");
                return;
            case BooleanValue boolean:
                sb.Append(boolean.Bool ? "true" : "false");
                return;
            case StringValue str:
                AppendJsonString(sb, str.Text, options.EnsureAscii);
                return;
            case ArrayValue { IsTuple: false } array:
            {
                var indent = options.Indent is > 0 ? new string(' ', options.Indent.Value) : "";
                var pretty = options.Indent is > 0 && array.Items.Count > 0;
                sb.Append('[');
                for (var i = 0; i < array.Items.Count; i++)
                {
                    if (i > 0) sb.Append(itemSeparator);
                    if (pretty) AppendPadding(sb, indent, depth + 1);
                    AppendJson(sb, array.Items[i], options, depth + 1, convertUndefinedToNull);
                }
                if (pretty) AppendPadding(sb, indent, depth);
                sb.Append(']');
                return;
            }
            case ObjectValue { IsKeywordArguments: false } or NamespaceValue:
            {
                var entries = input is ObjectValue o ? o.Entries : ((NamespaceValue)input).Entries;
                var indent = options.Indent is > 0 ? new string(' ', options.Indent.Value) : "";
                var pretty = options.Indent is > 0 && entries.Count > 0;
                IEnumerable<KeyValuePair<string, Value>> ordered = entries;
                if (options.SortKeys) ordered = entries.OrderBy(p => p.Key, StringComparer.InvariantCulture);
                sb.Append('{');
                var first = true;
                foreach (var (key, value) in ordered)
                {
                    if (!first) sb.Append(itemSeparator);
                    first = false;
                    if (pretty) AppendPadding(sb, indent, depth + 1);
                    AppendJsonString(sb, key, options.EnsureAscii);
                    sb.Append(keySeparator);
                    AppendJson(sb, value, options, depth + 1, convertUndefinedToNull);
                }
                if (pretty) AppendPadding(sb, indent, depth);
                sb.Append('}');
                return;
            }
            default:
                throw new RenderError($"Cannot convert to JSON: {input.TypeName}");
        }
    }

    private static void AppendPadding(StringBuilder sb, string indent, int depth)
    {
        sb.Append('\n');
        for (var i = 0; i < depth; i++) sb.Append(indent);
    }

    public static string Trim(string s) => TrimEnd(TrimStart(s));

    public static string TrimStart(string s)
    {
        var start = 0;
        while (start < s.Length && Lexer.IsJsWhitespace(s[start])) start++;
        return start == 0 ? s : s[start..];
    }

    public static string TrimEnd(string s)
    {
        var end = s.Length;
        while (end > 0 && Lexer.IsJsWhitespace(s[end - 1])) end--;
        return end == s.Length ? s : s[..end];
    }

    /// <summary>String.prototype.toUpperCase: full case mapping, so "ß" becomes "SS".</summary>
    public static string ToUpper(string s)
    {
        var upper = s.ToUpperInvariant();
        return upper.Contains('ß') ? upper.Replace("ß", "SS", StringComparison.Ordinal) : upper;
    }

    public static string ToLower(string s) => s.ToLowerInvariant();

    /// <summary>The reference's title(): upper-cases each ASCII word character that starts a word (<c>/\b\w/g</c>).</summary>
    public static string TitleCase(string s)
    {
        var chars = s.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (Lexer.IsWordChar(chars[i]) && (i == 0 || !Lexer.IsWordChar(chars[i - 1])))
                chars[i] = char.ToUpperInvariant(chars[i]);
        }
        return new string(chars);
    }

    /// <summary>Array.from(string): code points, a lone surrogate standing alone.</summary>
    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                list.Add(s.Substring(i, 2));
                i++;
            }
            else
            {
                list.Add(s[i].ToString());
            }
        }
        return list;
    }

    /// <summary>ECMAScript ToNumber on a string, for loose equality between strings and numbers.</summary>
    public static double StringToNumber(string s)
    {
        var t = Trim(s);
        if (t.Length == 0) return 0;
        if (t is "Infinity" or "+Infinity") return double.PositiveInfinity;
        if (t == "-Infinity") return double.NegativeInfinity;
        if (t.Length > 2 && t[0] == '0' && t[1] is 'x' or 'X' or 'o' or 'O' or 'b' or 'B')
        {
            var radix = t[1] is 'x' or 'X' ? 16 : t[1] is 'o' or 'O' ? 8 : 2;
            double value = 0;
            foreach (var c in t.AsSpan(2))
            {
                var d = Uri.IsHexDigit(c) ? Convert.ToInt32(c.ToString(), 16) : 99;
                if (d >= radix) return double.NaN;
                value = value * radix + d;
            }
            return value;
        }
        foreach (var c in t)
            if (!(char.IsAsciiDigit(c) || c is '.' or 'e' or 'E' or '+' or '-')) return double.NaN;
        return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var result) ? result : double.NaN;
    }

    /// <summary>parseInt(s, 10): optional sign and the leading decimal digits, NaN when there are none.</summary>
    public static double ParseInt(string s)
    {
        var t = TrimStart(s);
        var i = 0;
        var negative = false;
        if (i < t.Length && t[i] is '+' or '-') negative = t[i++] == '-';
        var start = i;
        double value = 0;
        while (i < t.Length && char.IsAsciiDigit(t[i])) value = value * 10 + (t[i++] - '0');
        if (i == start) return double.NaN;
        return negative ? -value : value;
    }

    /// <summary>parseFloat(s): the longest leading decimal literal, NaN when there is none.</summary>
    public static double ParseFloat(string s)
    {
        var t = TrimStart(s);
        var i = 0;
        if (i < t.Length && t[i] is '+' or '-') i++;
        if (string.CompareOrdinal(t, i, "Infinity", 0, 8) == 0)
            return t[0] == '-' ? double.NegativeInfinity : double.PositiveInfinity;
        var digitsStart = i;
        while (i < t.Length && char.IsAsciiDigit(t[i])) i++;
        var intDigits = i - digitsStart;
        var fracDigits = 0;
        if (i < t.Length && t[i] == '.')
        {
            var j = i + 1;
            while (j < t.Length && char.IsAsciiDigit(t[j])) j++;
            fracDigits = j - i - 1;
            if (intDigits > 0 || fracDigits > 0) i = j;
        }
        if (intDigits == 0 && fracDigits == 0) return double.NaN;
        if (i < t.Length && t[i] is 'e' or 'E')
        {
            var j = i + 1;
            if (j < t.Length && t[j] is '+' or '-') j++;
            var expStart = j;
            while (j < t.Length && char.IsAsciiDigit(t[j])) j++;
            if (j > expStart) i = j;
        }
        return double.Parse(t.AsSpan(0, i), NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
