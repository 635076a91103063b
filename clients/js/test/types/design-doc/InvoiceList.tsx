import { useWebSocket } from '@/hooks/useWebSocket';
import { InvoiceEvent, InvoiceEventPayload } from '@operate/shared';

export function InvoiceList() {
  const { connected, subscribe } = useWebSocket();
  const { refetch } = useInvoices();

  useEffect(() => {
    const unsubscribers = [
      subscribe<InvoiceEventPayload>(InvoiceEvent.CREATED, (data) => {
        console.log('New invoice:', data);
        refetch(); // Refresh invoice list
      }),

      subscribe<InvoiceEventPayload>(InvoiceEvent.PAID, (data) => {
        console.log('Invoice paid:', data);
        refetch();
        toast.success(`Invoice ${data.invoiceNumber} paid!`);
      }),
    ];

    return () => unsubscribers.forEach(unsub => unsub());
  }, [subscribe, refetch]);

  return <div>Invoice List (Live: {connected ? '✓' : '✗'})</div>;
}
