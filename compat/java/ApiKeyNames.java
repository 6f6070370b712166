// Prints "<id> <name>" for every API key kafka-clients knows (java -cp 'libs/*' ApiKeyNames.java).
// The compatibility runner uses it to name API keys that Sluice's generated codec does not know.
public class ApiKeyNames {
    public static void main(String[] args) {
        for (org.apache.kafka.common.protocol.ApiKeys k : org.apache.kafka.common.protocol.ApiKeys.values()) {
            System.out.println(k.id + " " + k.name);
        }
    }
}
