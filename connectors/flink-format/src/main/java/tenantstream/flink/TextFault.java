package tenantstream.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code TEXT_FAULT(text, max_chars)}: what is wrong with a text field of a record, or NULL when
 * nothing is (NULL text included: whether a field may be missing is another rule's business).
 * Wrong: more than {@code max_chars} characters (code points), then a control character (Unicode
 * category Cc: U+0000-U+001F, U+007F-U+009F), e.g. "is too long: 5000 characters, at most 200" or
 * "has a control character: U+0000 at character 4".
 *
 * <p>Why a function: it reads the UTF-8 bytes the format decoded, once, without building a Java
 * string; the same in SQL (CHAR_LENGTH and REGEXP) decodes the text to a string and runs a regular
 * expression per field and record.
 */
public final class TextFault extends ScalarFunction {
    private static final long serialVersionUID = 1L;

    public @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData eval(
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData text, int maxChars) {
        if (text == null) {
            return null;
        }
        byte[] bytes = text.toBytes();
        int chars = 0;
        int control = -1;
        int controlAt = 0;
        for (int i = 0; i < bytes.length; i++) {
            int b = bytes[i] & 0xFF;
            if ((b & 0xC0) == 0x80) {
                continue; // a continuation byte: part of the character counted at its lead byte
            }
            chars++;
            if (control < 0) {
                if (b < 0x20 || b == 0x7F) {
                    control = b;
                    controlAt = chars;
                } else if (b == 0xC2 && i + 1 < bytes.length && (bytes[i + 1] & 0xFF) <= 0x9F) {
                    control = bytes[i + 1] & 0xFF; // U+0080-U+009F are C2 80 - C2 9F
                    controlAt = chars;
                }
            }
        }
        if (chars > maxChars) {
            return StringData.fromString("is too long: " + chars + " characters, at most " + maxChars);
        }
        if (control >= 0) {
            return StringData.fromString(String.format(
                    "has a control character: U+%04X at character %d", control, controlAt));
        }
        return null;
    }
}
