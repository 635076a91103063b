// What the design document's InvoiceList sample (InvoiceList.tsx, copied
// unchanged) uses without importing it: React's useEffect, the application's
// useInvoices query hook and a toast library. Declared here so that the sample
// itself stays byte for byte as the document has it.

declare global {
  const useEffect: typeof import('react').useEffect;
  function useInvoices(): { refetch: () => void };
  const toast: { success(message: string): void };
}

export {};
