// Reference for bench/collect.py: a plain Java JMX client reading the same
// attributes with getAttributes over one persistent connection.
// Usage: java bench/JmxBench.java HOST PORT SECONDS MBEAN ATTR[,ATTR...] [MBEAN ATTRS ...]
// Prints one line: values_per_s=<float> calls=<n> values=<n>
import java.util.ArrayList;
import java.util.List;
import javax.management.AttributeList;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class JmxBench {
    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        double seconds = Double.parseDouble(args[2]);
        List<ObjectName> names = new ArrayList<>();
        List<String[]> attrs = new ArrayList<>();
        for (int i = 3; i + 1 < args.length; i += 2) {
            names.add(new ObjectName(args[i]));
            attrs.add(args[i + 1].split(","));
        }
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + host + ":" + port + "/jmxrmi");
        try (JMXConnector connector = JMXConnectorFactory.connect(url)) {
            MBeanServerConnection conn = connector.getMBeanServerConnection();
            // Warm up: the first calls pay class loading and JIT.
            long warmEnd = System.nanoTime() + 1_000_000_000L;
            while (System.nanoTime() < warmEnd) {
                for (int i = 0; i < names.size(); i++) conn.getAttributes(names.get(i), attrs.get(i));
            }
            long values = 0, calls = 0;
            long start = System.nanoTime();
            long end = start + (long) (seconds * 1e9);
            while (System.nanoTime() < end) {
                for (int i = 0; i < names.size(); i++) {
                    AttributeList list = conn.getAttributes(names.get(i), attrs.get(i));
                    values += list.size();
                    calls++;
                }
            }
            double elapsed = (System.nanoTime() - start) / 1e9;
            System.out.printf("values_per_s=%.1f calls=%d values=%d%n", values / elapsed, calls, values);
        }
    }
}
